"""The gateway's settings: one validated model, checked before anything connects or starts.

``ivri gateway`` builds a :class:`GatewaySettings` from its options, the co-simulation from its
own; a misspelt or out-of-range setting is a :class:`~ivri.errors.ConfigError` that names the
field (:func:`gateway_settings`). What is not a plain value (the trust store, the site
models, a TLS context, callbacks, the transport) is passed to
:class:`~ivri.gateway.service.GatewayService` beside the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivri.config import format_validation_error
from ivri.errors import ConfigError
from ivri.its import DEFAULT_MAX_BYTES

__all__ = ["GatewaySettings", "gateway_settings"]


class GatewaySettings(BaseModel):
    """Everything about a gateway that is a plain value (see :mod:`ivri.gateway.service`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``mqtt://host[:1883]``, ``mqtts://host[:8883]`` or ``memory://`` (in the process).
    broker_url: str = "mqtt://127.0.0.1:1883"
    #: Topic level: ``ivri/<region>/<intersection>/...``.
    region: str = "nl"
    #: Controller spec (see ``ivri controllers``) and its parameters (``make_controller``).
    controller: str = "actuated+greenflow"
    controller_params: dict[str, Any] = Field(default_factory=dict)
    codec: Literal["json", "uper"] = "json"
    #: ASN.1 modules for the UPER codec (default: ``$IVRI_ASN1_DIR``).
    asn1_dir: Path | None = None
    tick_s: float = Field(0.5, gt=0.0, allow_inf_nan=False)
    #: SPATEM period [s] (also sent at once on every change).
    spat_every_s: float = Field(1.0, gt=0.0, allow_inf_nan=False)
    username: str | None = None
    password: str | None = Field(None, repr=False)
    #: CA certificate (PEM) to trust for an ``mqtts://`` broker (a self-signed one).
    ca_file: Path | None = None
    #: Every signal group calls (no detectors in live mode).
    always_demand: bool = False
    max_payload_bytes: int = Field(16 * 1024, gt=0, le=DEFAULT_MAX_BYTES)
    #: A station unheard of this long is forgotten [s].
    station_ttl_s: float = Field(3.0, gt=0.0, allow_inf_nan=False)
    request_ttl_s: float = Field(10.0, gt=0.0, allow_inf_nan=False)
    request_grace_s: float = Field(3.0, ge=0.0, allow_inf_nan=False)
    default_eta_s: float = Field(10.0, ge=0.0, allow_inf_nan=False)
    srem_bus_lateness_s: float = Field(600.0, ge=0.0, allow_inf_nan=False)
    extension_m: float = Field(40.0, gt=0.0, allow_inf_nan=False)
    verifier_window_s: float = Field(5.0, gt=0.0, allow_inf_nan=False)
    verifier_rate_per_s: float = Field(2.0, gt=0.0, allow_inf_nan=False)
    verifier_burst: int = Field(5, ge=1)
    reconnect_min_s: float = Field(0.25, gt=0.0, allow_inf_nan=False)
    reconnect_max_s: float = Field(10.0, gt=0.0, allow_inf_nan=False)
    keepalive_s: int = Field(10, ge=1)
    #: MQTT client id prefix (``<id>-0``, ``<id>-srem``, ...); None: the broker picks.
    client_id: str | None = None
    #: At most one log line per kind of rejection every this many seconds.
    log_every_s: float = Field(5.0, ge=0.0, allow_inf_nan=False)
    #: The caller ticks (``tick_once``; a lockstep co-simulation) and its clock is the time.
    external_clock: bool = False
    #: Closed test sites and simulation only: CAMs of emergency vehicles, buses and trucks ask
    #: for priority without a signed request.
    allow_cam_priority: bool = False
    #: Directory for the replay state of signed requests, kept across restarts.
    state_dir: Path | None = None
    max_stations: int = Field(10_000, ge=1)
    client_cam_rate_per_s: float = Field(50.0, gt=0.0, allow_inf_nan=False)
    failure_rate_per_s: float = Field(1.0, gt=0.0, allow_inf_nan=False)
    failure_burst: int = Field(5, ge=1)
    inbox_size: int = Field(2_000, ge=1)
    ingest_slice_s: float = Field(0.005, gt=0.0, allow_inf_nan=False)

    @field_validator("broker_url")
    @classmethod
    def _known_broker_url(cls, url: str) -> str:
        from ivri.gateway.transport import is_memory_url, parse_broker_url

        if not is_memory_url(url):
            try:
                parse_broker_url(url)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return url

    @field_validator("controller")
    @classmethod
    def _known_controller(cls, spec: str) -> str:
        from ivri.controllers import parse_spec

        try:
            parse_spec(spec)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return spec


def gateway_settings(**values: Any) -> GatewaySettings:
    """:class:`GatewaySettings` from keyword values, or a :class:`ConfigError` naming every
    field that is unknown or wrong (``gateway setting tick_s: ...``)."""
    try:
        return GatewaySettings(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "gateway setting")) from None
