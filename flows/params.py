"""Parameter models: deletion requests and the flows' parameters.

Offers
- :class:`DeletionRequest` (with :class:`Subject`, :class:`Identifier`) and :func:`load_request` /
  :func:`parse_request`, which reject an invalid request with one line per problem, naming the field path and
  the reason (``subject.identifiers[1].value: not a valid email address``) and never the submitted value;
- the compliance policy is in :mod:`flows.policy`;
- :class:`DeletionRequestParams` and :class:`SweepParams`, the flows' parameter models;
- :class:`ParamsError`, a ``ValueError`` carrying ``problems: list[str]``.

Deletion-request JSON::

    {"request_id": "REQ-2026-0001",                 # letters, digits, . _ - (it names a workspace folder)
     "received_at": "2026-03-01T09:00:00Z",          # timezone required, not in the future
     "verified_at": "2026-03-02T10:30:00+01:00",     # identity verified; not before received_at
     "legal_basis": "gdpr-17-1-a",                   # one of LEGAL_BASES
     "requester_ref": "TICKET-4711",                 # the DPO's ticket reference, not personal data
     "subject": {"name": "Jane Doe",
                 "identifiers": [{"type": "email", "value": "jane@example.com"}, ...]}}

The raw request stays where the user keeps it; only ids, HMACs and masked previews leave this process.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import phonenumbers
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

IdentifierType = Literal["email", "ssn", "phone", "name", "other"]

#: Accepted legal bases: GDPR Art. 17(1)(a)–(f) and CCPA §1798.105 (right to delete).
LEGAL_BASES: dict[str, str] = {
    "gdpr-17-1-a": "GDPR Art. 17(1)(a): no longer necessary for the purposes collected",
    "gdpr-17-1-b": "GDPR Art. 17(1)(b): consent withdrawn, no other legal ground",
    "gdpr-17-1-c": "GDPR Art. 17(1)(c): objection under Art. 21, no overriding legitimate grounds",
    "gdpr-17-1-d": "GDPR Art. 17(1)(d): unlawfully processed",
    "gdpr-17-1-e": "GDPR Art. 17(1)(e): erasure required by a legal obligation",
    "gdpr-17-1-f": "GDPR Art. 17(1)(f): collected in relation to information society services to a child",
    "ccpa-1798.105": "CCPA §1798.105: consumer's right to delete",
}
#: Clock skew tolerated before a timestamp counts as "in the future".
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_PHONE_REGION = "US"

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+")
_SSN = re.compile(r"(\d{3})-?(\d{2})-?(\d{4})")
_NON_DIGIT = re.compile(r"\D")


class ParamsError(ValueError):
    """A request or policy file is invalid; ``problems`` holds one ``path: reason`` line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def _err(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _check_email(value: str) -> None:
    if not _EMAIL.fullmatch(value.strip()) or ".." in value:
        raise _err("email", "not a valid email address")


def _check_ssn(value: str) -> None:
    match = _SSN.fullmatch(value.strip())
    if not match:
        raise _err("ssn", "not a valid SSN (expected 9 digits, e.g. AAA-GG-SSSS)")
    area, group, serial = match.groups()
    if area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000":
        raise _err("ssn", "not a valid SSN (area 000/666/9xx, group 00 and serial 0000 are never issued)")


def _check_phone(value: str) -> None:
    try:
        parsed = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise _err("phone", "not a parseable phone number (use E.164, e.g. +1 212 555 0187)") from None
    if not phonenumbers.is_possible_number(parsed):
        raise _err("phone", "not a possible phone number (wrong number of digits for its region)")


_VALUE_CHECKS = {"email": _check_email, "ssn": _check_ssn, "phone": _check_phone}


def normalized_identifier(kind: str, value: str) -> str:
    """Return the comparison form of an identifier value (used to find duplicates)."""
    if kind == "email":
        return value.strip().lower()
    if kind == "ssn":
        return _NON_DIGIT.sub("", value)
    if kind == "phone":
        try:
            parsed = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
        except phonenumbers.NumberParseException:
            return _NON_DIGIT.sub("", value)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return " ".join(value.split()).casefold()


class Identifier(BaseModel):
    """One identifier of the data subject; ``value`` is personal data and never printed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: IdentifierType
    value: str = Field(repr=False, min_length=1, max_length=512)

    @field_validator("value")
    @classmethod
    def _value_matches_type(cls, value: str, info) -> str:
        if not value.strip():
            raise _err("blank", "must not be blank")
        check = _VALUE_CHECKS.get(info.data.get("type", ""))
        if check is not None:
            check(value)
        return value


class Subject(BaseModel):
    """The data subject: a name and at least one identifier."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(repr=False, min_length=1, max_length=512)
    identifiers: list[Identifier] = Field(min_length=1, max_length=1000)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise _err("blank", "must not be blank")
        return value

    @field_validator("identifiers")
    @classmethod
    def _no_duplicates(cls, identifiers: list[Identifier]) -> list[Identifier]:
        seen: dict[tuple[str, str], int] = {}
        for i, ident in enumerate(identifiers):
            key = (ident.type, normalized_identifier(ident.type, ident.value))
            if key in seen:
                raise _err("duplicate", f"identifiers[{i}] duplicates identifiers[{seen[key]}] "
                                        "(same type and normalized value)")
            seen[key] = i
        return identifiers


class DeletionRequest(BaseModel):
    """A verified erasure request (schema in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    received_at: AwareDatetime
    verified_at: AwareDatetime
    legal_basis: str
    requester_ref: str = Field(min_length=1, max_length=200)
    subject: Subject

    @field_validator("request_id", mode="before")
    @classmethod
    def _safe_request_id(cls, value: Any) -> Any:
        if isinstance(value, str) and not _REQUEST_ID.fullmatch(value):
            raise _err("request_id", "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter "
                                     "or digit (it names a folder: no path separators)")
        return value

    @field_validator("received_at", "verified_at", mode="before")
    @classmethod
    def _strict_timestamp(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise _err("timestamp", "must be an ISO 8601 string with a timezone, e.g. 2026-03-01T09:00:00Z")
        return value

    @field_validator("received_at", "verified_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC) + CLOCK_SKEW:
            raise _err("future", "is in the future")
        return value

    @field_validator("verified_at")
    @classmethod
    def _verified_after_received(cls, value: datetime, info) -> datetime:
        received = info.data.get("received_at")
        if received is not None and value < received:
            raise _err("order", "is before received_at (identity must be verified after the request arrives)")
        return value

    @field_validator("legal_basis")
    @classmethod
    def _known_legal_basis(cls, value: str) -> str:
        if value not in LEGAL_BASES:
            raise _err("legal_basis", "unknown legal basis; expected one of: " + ", ".join(LEGAL_BASES))
        return value


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _messages(exc: ValidationError) -> list[str]:
    # include_input=False: the submitted values are personal data and must not reach logs or terminals.
    problems = []
    for e in exc.errors(include_input=False, include_url=False, include_context=False):
        reason = "required field is missing" if e["type"] == "missing" else e["msg"]
        if e["type"] == "extra_forbidden":
            reason = "unknown field"
        problems.append(f"{_loc(e['loc'])}: {reason}")
    return problems


def parse_request(text: str, source: str = "<request>") -> DeletionRequest:
    """Parse and validate a deletion request from JSON text.

    Raises:
        ParamsError: JSON syntax error (with line and column) or one line per invalid field.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's reason only; exc.doc (the raw text) is never included.
        raise ParamsError(source, [f"JSON syntax error at line {exc.lineno} column {exc.colno}: {exc.msg}"]) \
            from None
    if not isinstance(data, dict):
        raise ParamsError(source, [f"(top level): must be a JSON object, got {type(data).__name__}"])
    try:
        return DeletionRequest.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(source, _messages(exc)) from None


def load_request(path: str | Path) -> DeletionRequest:
    """Read and validate a deletion-request JSON file (see :func:`parse_request`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ParamsError(str(path), ["(file): not UTF-8 text"]) from None
    return parse_request(text, str(path))


# ---------------------------------------------------------------------------------------------- flow parameters


class _RuntimeParams(BaseModel):
    """Where a flow's models run and in which precision (checked by name here; the device itself where it runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str | None = Field(None, description="Where models run: auto, cpu, cuda or cuda:N (None: "
                               "$REVS_DEVICE, else auto).")
    dtype: str | None = Field(None, description="The weights' precision: auto (the checkpoint's own), fp32, bf16 "
                              "or fp16 (None: $REVS_DTYPE, else auto).")

    @field_validator("device", "dtype")
    @classmethod
    def _runtime_name(cls, value: str | None, info) -> str | None:
        from revs_engine.devices import device_name, parse_dtype

        if value is None:
            return None
        if info.field_name == "device":
            return device_name(value)
        parse_dtype(value)
        return value.strip().lower()


class DeletionRequestParams(_RuntimeParams):
    """Parameters of the ``deletion-request`` flow: paths and names only, never personal data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: Path = Field(description="Path to the deletion-request JSON (it stays where the user keeps it).")
    model: str = Field(description="Registered model name (MLflow Model Registry).")
    corpus: Path = Field(description="Training corpus to locate the subject's data in.")
    policy: Path | None = Field(None, description="Policy TOML; defaults apply when omitted.")


class SweepParams(_RuntimeParams):
    """Parameters of the ``compliance-sweep`` flow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: Path
    model: str
    policy: Path | None = None
