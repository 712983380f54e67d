"""Make the data controller's recovery key. The private key is printed once as three SLIP-39 shares
(any two rebuild it) for three records custodians to write down, and is never stored: only the public
key goes into the database. Every later epoch is also sealed to it."""

import os

import shamir_mnemonic
from django.core.management.base import BaseCommand
from nacl.bindings import crypto_scalarmult_base

from messaging.services import custodian_key_install
from tacclient import crypto


class Command(BaseCommand):
    help = "Create a custodian key pair, install its public half, print its private half as 2-of-3 shares."

    def add_arguments(self, parser):
        parser.add_argument("--label", required=True, help="e.g. 'Northshire Council 2026'")
        parser.add_argument("--quiet", action="store_true", help="install without printing shares (tests, demo)")

    def handle(self, *args, **options):
        secret = os.urandom(32)
        public = crypto_scalarmult_base(secret)
        key = custodian_key_install(box_public=public, label=options["label"])
        if options["quiet"]:
            self.stdout.write(f"custodian key {key.label} installed; its private key was discarded")
            return
        shares = shamir_mnemonic.generate_mnemonics(group_threshold=1, groups=[(2, 3)], master_secret=secret)[0]
        self.stdout.write(f"Custodian key installed: {key.label}, id {crypto.custodian_key_id(public).hex()[:16]}")
        self.stdout.write("Give one share to each of three custodians. Any two rebuild the key. It is not stored.\n")
        for number, share in enumerate(shares, start=1):
            self.stdout.write(f"Share {number}:\n  {share}\n")
