"""config.json and models.json: typed models, loading and validation.

Both files are parsed once into frozen pydantic models. Every mistake is reported with the
file it is in, the place in that file (a dotted path such as ``profiles.acme-chat.scope``)
and what is wrong, and all mistakes are reported at once, so a deploy or a local start never
goes ahead with a half-valid configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tollgate.money import PRICE_DECIMALS

CONFIG_FILE = "config.json"
MODELS_FILE = "models.json"
#: Folder of the ConfigLayer that holds both files (mounted at /opt/tollgate-config in Lambda).
LAYER_CONFIG_DIR = "tollgate-config"

Scope = Literal["in-region", "cross-region", "global"]
SCOPES: tuple[Scope, ...] = ("in-region", "cross-region", "global")
PRICE_UNIT = "USD per 1M tokens"

#: Tag keys Tollgate puts on the resources it manages; config.json may not set them.
RESERVED_TAG_PREFIXES = ("tollgate:", "aws:")
#: AWS allows 50 tags per resource; Tollgate adds three of its own.
MAX_USER_TAGS = 47

ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w\s.:/=+\-@]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[\w\s.:/=+\-@]*$")]
ModelId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+\.[A-Za-z0-9.:_-]+$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- config.json

#: A count in config.json is a JSON whole number: strict, so that ``true`` is not taken for 1
#: (nor "60" or 1.5 for a count).
Count = Annotated[int, Field(strict=True, gt=0)]


class ThresholdOverrides(_Strict):
    """Per-profile overrides; anything left out falls back to ``defaults``."""

    cost_threshold: Decimal | None = Field(default=None, gt=0)
    tokens_per_min_threshold: Count | None = None
    requests_per_min_threshold: Count | None = None


class Defaults(_Strict):
    #: USD of token cost per profile over 5 minutes above which BedrockTokenCostAlarm fires.
    cost_threshold: Decimal = Field(gt=0)
    tokens_per_min_threshold: Count
    requests_per_min_threshold: Count
    scope: Scope = "in-region"


def unknown_tenant(tenant: str, defined: Iterable[str]) -> str:
    return (
        f"tenant {tenant!r} is not defined under 'tenants' (defined: {', '.join(sorted(defined))}); "
        "add it there, or name one of those"
    )


class Tenant(_Strict):
    display_name: str = Field(min_length=1, max_length=128)
    #: Tags put on every inference profile of the tenant (cost allocation), under the profile's own.
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)


class Profile(_Strict):
    tenant: TenantId
    model: ModelId
    scope: Scope | None = None
    description: str = Field(default="", max_length=200)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    thresholds: ThresholdOverrides = Field(default_factory=ThresholdOverrides)

    @field_validator("tenant")
    @classmethod
    def _known_tenant(cls, value: str, info: ValidationInfo) -> str:
        # The tenants of the file being read (ConfigBundle passes them), so that an unknown tenant
        # is reported together with every other mistake, not only once all else is valid.
        defined = (info.context or {}).get("tenants")
        if defined is not None and value not in defined:
            raise ValueError(unknown_tenant(value, defined))
        return value


class TollgateConfig(_Strict):
    admin_email: Email
    defaults: Defaults
    tenants: dict[TenantId, Tenant] = Field(min_length=1)
    profiles: dict[ProfileName, Profile] = Field(min_length=1)

    @model_validator(mode="after")
    def _profiles_name_known_tenants(self) -> TollgateConfig:
        # ConfigBundle reports these per profile (Profile._known_tenant); kept here so that a bare
        # TollgateConfig can never be built with dangling tenants either. All at once, each in its place.
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_tenant", "{message}", {"message": unknown_tenant(p.tenant, self.tenants)}
                ),
                loc=("profiles", name, "tenant"),
                input=p.tenant,
            )
            for name, p in self.profiles.items()
            if p.tenant not in self.tenants
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


# --------------------------------------------------------------------------- models.json


def _exact_price(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if value < 0:
        raise ValueError("a price cannot be negative")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > PRICE_DECIMALS:
        raise ValueError(
            f"{value} has more than {PRICE_DECIMALS} decimals; prices are USD per 1M tokens "
            f"(a price per 1K tokens must be multiplied by 1000)"
        )
    return value


class PriceRow(_Strict):
    scope: Scope
    effective_from: date
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None

    @field_validator("input", "output", "cache_read", "cache_write", mode="before")
    @classmethod
    def _strings_in_the_file(cls, value: Any, info: ValidationInfo) -> Any:
        # models.json writes prices as strings, read exactly. A JSON number there (0.25 or 3) is a
        # mistake a generator script makes; true is no price at all. Code may pass Decimals; never floats.
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError(f'{_json(value)} is not a price; write it as a string, e.g. "0.25"')
        if isinstance(value, float) or (info.context or {}).get("file"):
            raise ValueError(
                f"{value} is a JSON number; prices are strings (USD per 1M tokens, read exactly): "
                f'write it as a string, e.g. "{value}"'
            )
        return value

    @field_validator("input", "output", "cache_read", "cache_write")
    @classmethod
    def _exact(cls, value: Decimal | None) -> Decimal | None:
        return _exact_price(value)

    @property
    def version(self) -> str:
        return f"{self.scope}@{self.effective_from.isoformat()}"


class ModelEntry(_Strict):
    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    prompt_caching: bool = False
    prices: list[PriceRow] = Field(min_length=1)

    @model_validator(mode="after")
    def _rows_consistent(self) -> ModelEntry:
        seen: set[tuple[str, date]] = set()
        for index, row in enumerate(self.prices):
            key = (row.scope, row.effective_from)
            if key in seen:
                raise ValueError(
                    f"prices[{index}]: a second row for scope {row.scope!r} effective {row.effective_from}; "
                    "each (scope, effective_from) may appear once"
                )
            seen.add(key)
            has_cache = row.cache_read is not None or row.cache_write is not None
            if self.prompt_caching and (row.cache_read is None or row.cache_write is None):
                raise ValueError(
                    f"prices[{index}]: the model supports prompt caching, so cache_read and cache_write "
                    "prices are required"
                )
            if not self.prompt_caching and has_cache:
                raise ValueError(
                    f"prices[{index}]: cache prices given but prompt_caching is false; "
                    "set prompt_caching to true or remove them"
                )
        return self

    def scopes(self) -> set[str]:
        return {row.scope for row in self.prices}


class ModelCatalog(_Strict):
    unit: str
    #: Where the prices come from and when they were checked (free text, for humans).
    source: str = ""
    models: dict[ModelId, ModelEntry] = Field(min_length=1)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if value != PRICE_UNIT:
            raise ValueError(
                f"unit must be exactly {PRICE_UNIT!r}; got {value!r}. Convert prices per 1K tokens by "
                "multiplying them by 1000."
            )
        return value


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.place}: {self.message}" if self.place else f"{self.file}: {self.message}"


class ConfigError(Exception):
    """One or more problems in config.json / models.json, each with file, place and fix."""

    def __init__(self, problems: Iterable[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field (check the spelling; see README 'config.json')",
}


@dataclass(frozen=True)
class _Threshold:
    meaning: str  # what it is, with {whose} for "a profile's" / "the profile's"
    kind: str  # what it must be
    form: str  # how it is written
    example: str


_THRESHOLDS = {
    "cost_threshold": _Threshold(
        "the token cost over 5 minutes above which {whose} BedrockTokenCostAlarm fires",
        "an amount of USD",
        "as a string",
        '"5.00"',
    ),
    "tokens_per_min_threshold": _Threshold(
        "the tokens per minute above which {whose} BedrockTokensPerMinuteAlarm fires",
        "a whole number",
        "as a JSON number",
        "100000",
    ),
    "requests_per_min_threshold": _Threshold(
        "the requests per minute above which {whose} BedrockRequestsPerMinuteAlarm fires",
        "a whole number",
        "as a JSON number",
        "60",
    ),
}


def _json(value: Any) -> str:
    """A value as it is written in the JSON file."""
    return str(value) if isinstance(value, Decimal) else json.dumps(value)


def _describe_threshold(error: Mapping[str, Any]) -> str | None:
    """What is wrong with a threshold, what it is for and how to write it; None if not about one."""
    loc = error["loc"]
    threshold = _THRESHOLDS.get(str(loc[-1])) if loc else None
    if threshold is None or loc[0] not in ("defaults", "profiles"):
        return None
    override = loc[0] == "profiles"
    meaning = threshold.meaning.format(whose="the profile's" if override else "a profile's")
    shown = _json(error.get("input"))
    if error["type"] == "greater_than":
        form = " as a string" if threshold.form == "as a string" else ""
        fix = f"write {threshold.kind} above 0{form}, e.g. {threshold.example}"
        if override:
            fix += f", or remove it to use defaults.{loc[-1]}"
        return f"{shown} is not above 0; it is {meaning}: {fix}"
    if error["type"] in ("int_type", "int_parsing", "int_from_float", "decimal_type", "decimal_parsing"):
        return f"{shown} is not {threshold.kind}; write {meaning} {threshold.form}, e.g. {threshold.example}"
    return None


def _place(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item == "[key]":  # pydantic's marker for "the key itself is invalid"
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("missing", "extra_forbidden"):
        return str(_MESSAGES[kind])
    threshold = _describe_threshold(error)
    if threshold is not None:
        return threshold
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        value = error.get("input")
        if "{0,39}" in pattern:
            hint = "profile names are 1-40 letters, digits, '-' or '_', starting with a letter or digit"
        elif "{0,63}" in pattern:
            hint = "tenant ids are 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
        elif "@" in pattern and "\\s" in pattern and "\\w" not in pattern:
            hint = "expected an email address such as admin@example.com"
        elif r"\.[A-Za-z0-9" in pattern:
            hint = "expected a Bedrock model id such as anthropic.claude-3-haiku-20240307-v1:0"
        else:
            hint = "tags may use letters, digits, spaces and _ . : / = + - @"
        return f"{value!r} is not valid: {hint}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _problems_from(exc: ValidationError, file: str, prefix: tuple[int | str, ...] = ()) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        message = _describe(error)
        # Model validators report their own place inside the message ("profiles.x.tenant: ...").
        match = re.match(r"^([\w.\-\[\]:]+): (.*)$", message, re.S)
        if match and not loc and "." in match.group(1):
            problems.append(ConfigProblem(file, match.group(1), match.group(2)))
            continue
        if match and match.group(1).startswith("prices["):
            problems.append(ConfigProblem(file, _place(loc) + "." + match.group(1), match.group(2)))
            continue
        problems.append(ConfigProblem(file, _place(loc), message))
    return problems


# --------------------------------------------------------------------------- loading


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def parse_json(text: str, file: str) -> Any:
    """Parse JSON exactly: numbers with a fraction become Decimal, duplicate keys are an error."""
    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as dup:
        raise ConfigError(
            [ConfigProblem(file, "", f"the key {dup.key!r} appears twice in one object; keep only one")]
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([ConfigProblem(file, f"line {exc.lineno} column {exc.colno}", exc.msg)]) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(path.name, "", f"file not found at {path}")]) from None


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile with defaults applied and tags merged: what the rest of Tollgate works with."""

    name: str
    tenant_id: str
    model_id: str
    scope: Scope
    description: str
    tags: Mapping[str, str]
    cost_threshold: Decimal
    tokens_per_min_threshold: int
    requests_per_min_threshold: int


@dataclass(frozen=True)
class ConfigBundle:
    """config.json and models.json, validated against each other."""

    config: TollgateConfig
    catalog: ModelCatalog

    @classmethod
    def from_texts(
        cls, config_text: str, models_text: str, *, config_file: str = CONFIG_FILE, models_file: str = MODELS_FILE
    ) -> ConfigBundle:
        problems: list[ConfigProblem] = []
        config: TollgateConfig | None = None
        catalog: ModelCatalog | None = None
        for text, file, model in ((config_text, config_file, TollgateConfig), (models_text, models_file, ModelCatalog)):
            try:
                raw = parse_json(text, file)
                tenants = raw.get("tenants") if isinstance(raw, dict) else None
                defined = set(tenants) if isinstance(tenants, dict) else None
                parsed = model.model_validate(raw, context={"file": file, "tenants": defined})
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            except ValidationError as exc:
                problems.extend(_problems_from(exc, file))
                continue
            if isinstance(parsed, TollgateConfig):
                config = parsed
            else:
                catalog = parsed
        if config is not None and catalog is not None:
            problems.extend(_cross_check(config, catalog, config_file, models_file))
        if problems or config is None or catalog is None:
            raise ConfigError(problems)
        return cls(config=config, catalog=catalog)

    @classmethod
    def load(cls, config_path: Path, models_path: Path) -> ConfigBundle:
        return cls.from_texts(
            _read(config_path), _read(models_path), config_file=config_path.name, models_file=models_path.name
        )

    @classmethod
    def load_dir(cls, directory: Path) -> ConfigBundle:
        return cls.load(directory / CONFIG_FILE, directory / MODELS_FILE)

    # -- views ---------------------------------------------------------------------------

    def profile(self, name: str) -> ResolvedProfile | None:
        raw = self.config.profiles.get(name)
        return None if raw is None else self._resolve(name, raw)

    def profiles(self) -> list[ResolvedProfile]:
        return [self._resolve(name, raw) for name, raw in sorted(self.config.profiles.items())]

    def profiles_of(self, tenant_id: str) -> list[ResolvedProfile]:
        return [p for p in self.profiles() if p.tenant_id == tenant_id]

    def _resolve(self, name: str, raw: Profile) -> ResolvedProfile:
        defaults = self.config.defaults
        tenant = self.config.tenants[raw.tenant]
        overrides = raw.thresholds
        return ResolvedProfile(
            name=name,
            tenant_id=raw.tenant,
            model_id=raw.model,
            scope=raw.scope or defaults.scope,
            description=raw.description,
            tags={**tenant.tags, **raw.tags},
            cost_threshold=overrides.cost_threshold or defaults.cost_threshold,
            tokens_per_min_threshold=overrides.tokens_per_min_threshold or defaults.tokens_per_min_threshold,
            requests_per_min_threshold=overrides.requests_per_min_threshold or defaults.requests_per_min_threshold,
        )


def _cross_check(
    config: TollgateConfig, catalog: ModelCatalog, config_file: str, models_file: str
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for tenant_id, tenant in config.tenants.items():
        problems.extend(_check_tags(tenant.tags, f"tenants.{tenant_id}.tags", config_file))
    for name, profile in config.profiles.items():
        place = f"profiles.{name}"
        model = catalog.models.get(profile.model)
        scope = profile.scope or config.defaults.scope
        if model is None:
            problems.append(
                ConfigProblem(
                    config_file,
                    f"{place}.model",
                    f"model {profile.model!r} has no prices in {models_file}; add it there or pick one of: "
                    + ", ".join(sorted(catalog.models)),
                )
            )
        elif scope not in model.scopes():
            problems.append(
                ConfigProblem(
                    config_file,
                    f"{place}.scope",
                    f"{models_file} has no {scope!r} price for {profile.model}; priced scopes: "
                    + ", ".join(sorted(model.scopes())),
                )
            )
        problems.extend(_check_tags(profile.tags, f"{place}.tags", config_file))
        merged = {**config.tenants[profile.tenant].tags, **profile.tags} if profile.tenant in config.tenants else {}
        if len(merged) > MAX_USER_TAGS:
            problems.append(
                ConfigProblem(
                    config_file, f"{place}.tags", f"{len(merged)} tags with the tenant's; at most {MAX_USER_TAGS}"
                )
            )
    return problems


def _check_tags(tags: Mapping[str, str], place: str, file: str) -> list[ConfigProblem]:
    return [
        ConfigProblem(file, f"{place}.{key}", f"tag keys starting with {prefix!r} are reserved; rename the tag")
        for key in tags
        for prefix in RESERVED_TAG_PREFIXES
        if key.lower().startswith(prefix)
    ]
