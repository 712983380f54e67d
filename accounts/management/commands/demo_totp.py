from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo account (development only: the demo has no phone)."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, **options):
        from django.conf import settings

        if not settings.DEBUG:
            raise CommandError("demo_totp runs only with DEBUG on")
        device = TOTPDevice.objects.filter(user__email__iexact=options["email"], confirmed=True).first()
        if device is None:
            raise CommandError(f"no authenticator for {options['email']}")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
        self.stdout.write(f"{code:0{device.digits}d}")
