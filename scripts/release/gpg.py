"""OpenPGP keys for Helm provenance, with Debian's gnupg: a throwaway signing key for the tests
and `make release-local`, and the exports Helm reads.

Helm reads OpenPGP keyrings in the legacy binary format only (GnuPG 2.1+ keeps its own keys in a
keybox it cannot read): `gpg --export-secret-keys > secring.gpg` for `helm package --sign
--keyring`, `gpg --export > pubring.gpg` for `helm ... --verify --keyring`.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SigningKey:
    uid: str            # what `helm package --key` names
    fingerprint: str    # 40 hex digits, upper case (what Artifact Hub's signKey carries)
    secring: Path       # legacy binary secret keyring, for helm package --sign
    pubring: Path       # binary public keyring, for helm --verify
    public_asc: Path    # ASCII-armoured public key, what users download


def _gpg(home: Path, *args: str, stdout: Path | None = None) -> str:
    if shutil.which("gpg") is None:
        raise SystemExit("signing needs GnuPG: apt-get install gnupg")
    command = ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args]
    if stdout is not None:
        with stdout.open("wb") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, check=False)
        error = result.stderr.decode(errors="replace")
        output = ""
    else:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        result, error, output = completed, completed.stderr, completed.stdout
    if result.returncode != 0:
        raise SystemExit(f"gpg {' '.join(args[:2])} failed: {error.strip()}")
    return output


def fingerprint_of(home: Path, uid: str) -> str:
    """The primary key's fingerprint of the one key `uid` names in a GnuPG home."""
    listing = _gpg(home, "--with-colons", "--list-keys", uid)
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    if not fingerprints:
        raise SystemExit(f"gpg has no key {uid!r} in {home}")
    return fingerprints[0].upper()


def keys_in_file(path: Path) -> dict[str, list[str]]:
    """Primary key fingerprint -> user ids, of every key in a key file (armoured or binary,
    public or secret, a legacy keyring too), read without importing it anywhere."""
    with tempfile.TemporaryDirectory(prefix="gpg-") as home:
        listing = _gpg(Path(home), "--with-colons", "--import-options", "show-only",
                       "--import", str(path))
    keys: dict[str, list[str]] = {}
    current: str | None = None
    expect_primary = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            expect_primary = True
        elif fields[0] == "fpr" and expect_primary:
            current, expect_primary = fields[9].upper(), False
            keys[current] = []
        elif fields[0] == "uid" and current:
            keys[current].append(fields[9])
    return keys


def public_key_fingerprint(public_asc: Path) -> str:
    """The primary key's fingerprint of an armoured public key file."""
    keys = keys_in_file(public_asc)
    if len(keys) != 1:
        raise SystemExit(f"{public_asc} holds {len(keys)} OpenPGP keys, not one")
    return next(iter(keys))


def signing_fingerprint(keyring: Path, name: str) -> str:
    """The fingerprint of the key `helm package --sign --key name --keyring keyring` signs with
    (Helm picks the key whose user id contains the name)."""
    if not keyring.is_file():
        raise SystemExit(f"no secret keyring at {keyring}: export one with "
                         "`gpg --export-secret-keys <key> > secring.gpg`")
    matching = [fingerprint for fingerprint, uids in keys_in_file(keyring).items()
                if any(name in uid for uid in uids) or fingerprint == name.upper()]
    if len(matching) != 1:
        raise SystemExit(f"{keyring}: {len(matching)} keys match {name!r}; name exactly one")
    return matching[0]


def export(home: Path, uid: str, into: Path) -> SigningKey:
    """The keyrings and armoured public key of `uid`, written into `into`."""
    into.mkdir(parents=True, exist_ok=True)
    key = SigningKey(uid, fingerprint_of(home, uid), into / "secring.gpg", into / "pubring.gpg",
                     into / "public-key.asc")
    _gpg(home, "--export-secret-keys", key.fingerprint, stdout=key.secring)
    key.secring.chmod(0o600)
    _gpg(home, "--export", key.fingerprint, stdout=key.pubring)
    _gpg(home, "--armor", "--export", key.fingerprint, stdout=key.public_asc)
    return key


def throwaway_key(home: Path, name: str, into: Path) -> SigningKey:
    """A new RSA key without a passphrase, valid for a day, in GnuPG home `home` (keep its path
    short: gpg-agent's socket lives there). For tests and local runs, never for a release."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    uid = f"{name} <{name}@ray-platform.invalid>"
    # RSA: the OpenPGP code Helm links reads RSA keys, not the newer ed25519 ones.
    _gpg(home, "--passphrase", "", "--quick-generate-key", uid, "rsa3072", "sign", "1d")
    return export(home, uid, into)


def stop_agent(home: Path) -> None:
    """gpg starts an agent per home; stop it with the home it belongs to."""
    if shutil.which("gpgconf"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False)
