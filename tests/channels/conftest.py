"""Channel tests use the credential tests' real keyring fixtures and the SSH tests'
real sshd hosts."""

from tests.credentials.conftest import no_dbus, secret_service  # noqa: F401
from tests.ssh.conftest import make_sshd, sshd, world  # noqa: F401
