"""Make the data controller's recovery key. The private key is printed once as three SLIP-39 shares
(any two rebuild it) for three records custodians to write down, and is never stored: only the public
keys go into the database and into the pin clients read (messaging/custodian.py). Every later epoch is
also sealed to it.

A deployment's first key starts the pin. A later key (after a recovery, say) must be signed by the one
before: two custodians type their shares of the previous key (--previous-shares, one share per line on
standard input). --new-pin starts again instead, which workspaces made under the old pin will refuse."""

import os
import sys

import shamir_mnemonic
from django.core.management.base import BaseCommand, CommandError

from messaging.custodian import Conflict, custodian_key_install
from tacprotocol import crypto
from tacprotocol.custodian import AppointmentError
from tacprotocol.custodian import identity_from_shares as shares_identity


def identity_from_shares(lines: list[str]) -> crypto.Identity:
    try:
        return shares_identity(lines)
    except AppointmentError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = "Create a custodian key pair, install and pin its public half, print its private half as 2-of-3 shares."

    def add_arguments(self, parser):
        parser.add_argument("--label", required=True, help="e.g. 'Northshire Council 2026'")
        parser.add_argument("--quiet", action="store_true", help="install without printing shares (tests, demo)")
        parser.add_argument("--previous-shares", action="store_true",
                            help="read two shares of the previous key from standard input, one per line, to sign this one")
        parser.add_argument("--new-pin", action="store_true",
                            help="start a new pin instead of extending it (existing workspaces will refuse new epochs)")

    def handle(self, *args, **options):
        previous = identity_from_shares(sys.stdin.read().splitlines()) if options["previous_shares"] else None
        secret = os.urandom(32)
        identity = crypto.custodian_identity(secret)
        try:
            key, digest = custodian_key_install(box_public=identity.box_public, sign_public=identity.sign_public,
                                                label=options["label"], previous=previous, new_pin=options["new_pin"])
        except Conflict as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        key_id = bytes(key.key_id).hex()
        if options["quiet"]:
            self.stdout.write(f"custodian key {key.label} installed and pinned (pin sha256 {digest}); its private key "
                              f"was discarded")
            return
        shares = shamir_mnemonic.generate_mnemonics(group_threshold=1, groups=[(2, 3)], master_secret=secret)[0]
        self.stdout.write(f"Custodian key installed: {key.label}, id {key_id[:16]}")
        self.stdout.write(f"Pin written (serve it with the scripts: collectstatic); its sha256 is {digest}")
        self.stdout.write("Give one share to each of three custodians. Any two rebuild the key. It is not stored.\n")
        for number, share in enumerate(shares, start=1):
            self.stdout.write(f"Share {number}:\n  {share}\n")
