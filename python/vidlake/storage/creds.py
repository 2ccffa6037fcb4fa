"""Credentials: resolving a creds key to a creds dict, and keeping secrets out of sight.

A dataset stores only the *names* of its creds keys. The secrets behind a name come from
one of three places, chosen when the key is added (Deep Lake 3.x's model):

``"ENV"``
    No dict at all: the storage client's own default chain applies (for S3, boto3's:
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
    ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``~/.aws/credentials`` and ``~/.aws/config``,
    instance roles ...). :func:`resolve_creds` returns ``None``.

populated (``managed=False``)
    The user hands the dict over in the running process (``ds.populate_creds(name, {...})``);
    it is kept in memory only. A key that was never populated raises
    :class:`vidlake.CredentialsError` naming the key.

managed (``managed=True``)
    Looked up on this machine, first in the credentials file, then in the environment:

    * the file ``~/.config/vidlake/credentials`` (or the path in ``VIDLAKE_CREDENTIALS_FILE``),
      INI format, one section per key name; it is refused unless only its owner can read it
      (``chmod 600``)::

          [my-bucket]
          aws_access_key_id = AKIA...
          aws_secret_access_key = ...
          aws_region = eu-west-1
          endpoint_url = https://s3.example.com

    * environment variables ``VIDLAKE_CREDS_<KEY>_<FIELD>``, where ``<KEY>`` is the key name
      upper-cased with every character other than ``A-Z0-9`` turned into ``_`` and ``<FIELD>``
      a creds field upper-cased; for the key ``my-bucket``::

          VIDLAKE_CREDS_MY_BUCKET_AWS_ACCESS_KEY_ID
          VIDLAKE_CREDS_MY_BUCKET_AWS_SECRET_ACCESS_KEY
          VIDLAKE_CREDS_MY_BUCKET_AWS_SESSION_TOKEN
          VIDLAKE_CREDS_MY_BUCKET_ENDPOINT_URL
          VIDLAKE_CREDS_MY_BUCKET_AWS_REGION
          VIDLAKE_CREDS_MY_BUCKET_PROFILE_NAME

Secrets never reach a file, a log line, an exception message or a repr through vidlake:
the dict :func:`resolve_creds` returns is a :class:`Creds` whose repr shows ``***``;
providers :func:`register_secrets` so that :func:`redact` scrubs them from any text,
including log records of ``vidlake``, ``botocore``, ``boto3``, ``urllib3`` and ``s3transfer``
(see :func:`install_log_redaction`). vidlake writes no secret to disk.

    >>> from vidlake.storage.creds import resolve_creds, redact
    >>> resolve_creds("ENV", managed=False, populated=None) is None
    True
    >>> c = resolve_creds("k", managed=False, populated={"aws_access_key_id": "AK", "aws_secret_access_key": "s3cr3t"})
    >>> c
    Creds({'aws_access_key_id': '***', 'aws_secret_access_key': '***'})
"""
from __future__ import annotations

import configparser
import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import CredentialsError
from . import _forksafe

__all__ = [
    "CREDS_FIELDS", "Creds", "credentials_file", "env_var_name", "install_log_redaction", "redact",
    "register_secrets", "resolve_creds", "validate_creds",
]

#: The fields a creds dict may hold: S3's (``aws_*``, ``endpoint_url``, ``profile_name``),
#: GCS's (``gcs_service_account``: a key file path or the key as a dict, ``gcs_anon``,
#: ``gcs_project``, ``endpoint_url``); HTTP(S) uses ``headers`` for extra request headers.
CREDS_FIELDS = (
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "endpoint_url", "aws_region", "profile_name", "headers",
    "gcs_service_account", "gcs_anon", "gcs_project",
)
#: Fields shown as they are; every other field's value is a secret.
PUBLIC_FIELDS = frozenset({"endpoint_url", "aws_region", "profile_name", "gcs_anon", "gcs_project", "token_uri"})
_SECRET_WORDS = ("secret", "token", "password", "passwd", "authorization", "api_key", "apikey",
                 "access_key", "signature", "credential", "cookie", "headers", "private_key", "assertion")
MASK = "***"
_MIN_SECRET_LEN = 4  # shorter strings are not scrubbed from text (they would mangle it)


def _is_secret_field(name: str) -> bool:
    n = str(name).lower()
    if n in PUBLIC_FIELDS:
        return False
    return any(w in n for w in _SECRET_WORDS)


# -- the in-memory registry of secret values ------------------------------------------
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_SECRETS_RE: re.Pattern[str] | None = None


@_forksafe.at_fork_in_child
def _fresh_lock() -> None:
    global _SECRETS_LOCK
    _SECRETS_LOCK = threading.Lock()  # a parent thread may have held it at the fork


def _secret_values(obj: Any) -> Iterable[str]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if isinstance(v, str):
                if _is_secret_field(k):
                    yield v
            else:
                yield from _secret_values(v)
            if _is_secret_field(k) and isinstance(v, Mapping):  # e.g. headers: every value
                for hv in v.values():
                    if isinstance(hv, str):
                        yield hv
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _secret_values(v)


def register_secrets(creds: Mapping[str, Any] | None) -> None:
    """Remember the secret values of ``creds`` (in memory) so :func:`redact` scrubs them from text."""
    global _SECRETS_RE
    if not creds:
        return
    new = {v for v in _secret_values(creds) if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN}
    if not new:
        return
    with _SECRETS_LOCK:
        if new <= _SECRETS:
            return
        _SECRETS.update(new)
        _SECRETS_RE = re.compile("|".join(re.escape(s) for s in sorted(_SECRETS, key=len, reverse=True)))


def _scrub(text: str) -> str:
    pat = _SECRETS_RE
    return pat.sub(MASK, text) if pat is not None and text else text


def redact(obj: Any) -> Any:
    """A copy of ``obj`` that is safe to print, log or put in an exception message.

    Mappings: values of secret fields (anything but ``endpoint_url``, ``aws_region``,
    ``profile_name`` among the creds fields; any key naming a secret, token, password ...)
    become ``"***"``; other values are redacted recursively. Strings: every registered secret
    value (see :func:`register_secrets`) is replaced by ``"***"``. Lists and tuples: element
    by element. Exceptions: their message, redacted, as a string. Anything else is returned
    as it is.

        >>> redact({"aws_secret_access_key": "abc123", "aws_region": "us-east-1"})
        {'aws_secret_access_key': '***', 'aws_region': 'us-east-1'}
    """
    if isinstance(obj, str):
        return _scrub(obj)
    if isinstance(obj, Mapping):
        return {k: (MASK if _is_secret_field(k) and v is not None else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    if isinstance(obj, BaseException):
        return _scrub(f"{type(obj).__name__}: {obj}")
    return obj


class Creds(dict):
    """A creds dict whose ``repr``/``str`` hide the secrets (``Creds({'aws_secret_access_key': '***'})``)."""

    def __repr__(self) -> str:
        return f"Creds({redact(dict(self))!r})"

    __str__ = __repr__


# -- log redaction ---------------------------------------------------------------------
_STRUCTURED_EXTRAS = ("httpRequest", "httpResponse")


class _RedactFilter(logging.Filter):
    """Scrubs registered secrets from a record's message (in place; always lets it through)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # google-auth puts requests and responses in structured extras (headers, and the
        # signed JWT it trades for a token, in the body): mask their secret fields
        for attr in _STRUCTURED_EXTRAS:
            v = getattr(record, attr, None)
            if isinstance(v, Mapping):
                setattr(record, attr, redact(v))
        if _SECRETS_RE is None:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging module's business
            return True
        clean = _scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = str(record.exc_info[1])
            if _scrub(text) != text:  # a traceback would show the secret: drop it
                record.msg = f"{record.msg} [{type(record.exc_info[1]).__name__}: {_scrub(text)}]"
                record.exc_info = None
                record.exc_text = None
        return True


_FILTER = _RedactFilter("vidlake-redact")
LOG_PREFIXES = ("vidlake", "botocore", "boto3", "urllib3", "s3transfer", "google")


def install_log_redaction(prefixes: Iterable[str] = LOG_PREFIXES) -> None:
    """Attach the redacting filter to every existing logger under ``prefixes`` (idempotent).

    A logger's filters see only records logged on that very logger, so the filter is put on
    each one; storage providers call this after creating their clients (whose modules create
    their loggers at import).
    """
    prefixes = tuple(prefixes)
    names = [n for n in list(logging.root.manager.loggerDict)
             if n in prefixes or n.startswith(tuple(p + "." for p in prefixes))]
    for name in set(names) | set(prefixes):
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


# -- resolution ------------------------------------------------------------------------
def validate_creds(creds: Mapping[str, Any] | None, *, where: str = "creds") -> Creds | None:
    """Check that ``creds`` holds only known fields; return it as a :class:`Creds` (or None)."""
    if creds is None:
        return None
    if not isinstance(creds, Mapping):
        raise CredentialsError(f"{where} must be a dict, got {type(creds).__name__}")
    unknown = sorted(str(k) for k in creds if k not in CREDS_FIELDS)
    if unknown:
        raise CredentialsError(f"{where}: unknown field(s) {unknown}; allowed: {list(CREDS_FIELDS)}")
    sa = creds.get("gcs_service_account")
    if isinstance(sa, str) and sa.lstrip().startswith("{"):
        # JSON text would sit in a field shown as it is: take the key as a dict or a file path
        raise CredentialsError(f"{where}: gcs_service_account is the path of a JSON key file or the key "
                               "as a dict (json.load it), not JSON text")
    out = Creds({k: v for k, v in creds.items() if v is not None and v != ""})
    register_secrets(out)
    return out


def credentials_file() -> str:
    """Path of the managed credentials file (``VIDLAKE_CREDENTIALS_FILE`` or ``~/.config/vidlake/credentials``)."""
    return os.path.expanduser(os.environ.get("VIDLAKE_CREDENTIALS_FILE") or "~/.config/vidlake/credentials")


def env_var_name(key_name: str, field: str) -> str:
    """The environment variable holding ``field`` of managed key ``key_name``.

        >>> env_var_name("my-bucket", "aws_access_key_id")
        'VIDLAKE_CREDS_MY_BUCKET_AWS_ACCESS_KEY_ID'
    """
    key = re.sub(r"[^A-Z0-9]", "_", key_name.upper())
    return f"VIDLAKE_CREDS_{key}_{field.upper()}"


def _from_file(key_name: str) -> Creds | None:
    path = credentials_file()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialsError(f"cannot read the credentials file {path}: {e.strerror or e}") from None
    if st.st_mode & 0o077:
        raise CredentialsError(
            f"the credentials file {path} is readable by others (mode {stat.filemode(st.st_mode)}); "
            f"refusing to use it: run `chmod 600 {path}`")
    parser = configparser.ConfigParser(interpolation=None, default_section="\0no-defaults")
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
    except (OSError, configparser.Error) as e:
        # configparser errors quote lines of the file: never show them (they may hold secrets)
        raise CredentialsError(f"cannot parse the credentials file {path} ({type(e).__name__})") from None
    if not parser.has_section(key_name):
        return None
    section = dict(parser.items(key_name))
    return validate_creds(section, where=f"section [{key_name}] of {path}")


def _from_env(key_name: str) -> Creds | None:
    found = {}
    for field in CREDS_FIELDS:
        if field == "headers":
            continue
        v = os.environ.get(env_var_name(key_name, field))
        if v:
            found[field] = v
    return validate_creds(found) if found else None


def resolve_creds(key_name: str, *, managed: bool, populated: Mapping[str, Any] | None) -> Creds | None:
    """The creds dict for creds key ``key_name`` (``None`` = the client's default chain).

    * ``"ENV"``: ``None``.
    * ``managed=True``: the key's section of the credentials file, else its
      ``VIDLAKE_CREDS_<KEY>_*`` environment variables (see the module docstring).
    * otherwise: ``populated``, the dict given to ``populate_creds`` in this process.

    Raises :class:`vidlake.CredentialsError` naming the key when nothing is found (and when
    the credentials file is readable by group or others).

        >>> resolve_creds("ENV", managed=False, populated=None) is None
        True
    """
    if not isinstance(key_name, str) or not key_name:
        raise CredentialsError(f"a creds key is a non-empty string, got {key_name!r}")
    if key_name == "ENV":
        return None
    if managed:
        found = _from_file(key_name) or _from_env(key_name)
        if found is None:
            raise CredentialsError(
                f"managed creds key {key_name!r} was not found: add a [{key_name}] section to "
                f"{credentials_file()} (mode 600) or set {env_var_name(key_name, 'aws_access_key_id')} "
                f"and the other {env_var_name(key_name, '<FIELD>')} variables")
        return found
    if populated is None:
        raise CredentialsError(
            f"creds key {key_name!r} is not populated; call ds.populate_creds({key_name!r}, {{...}}) "
            f"in this process (secrets are kept in memory only)")
    return validate_creds(populated, where=f"creds for key {key_name!r}")
