from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Pattern(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PATTERN_UNSPECIFIED: _ClassVar[Pattern]
    PATTERN_BEDROCK_PROVISIONED: _ClassVar[Pattern]
    PATTERN_BEDROCK_ON_DEMAND: _ClassVar[Pattern]
    PATTERN_SAGEMAKER_REALTIME: _ClassVar[Pattern]
    PATTERN_SAGEMAKER_SERVERLESS: _ClassVar[Pattern]
    PATTERN_LAMBDA_ON_DEMAND: _ClassVar[Pattern]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_OK: _ClassVar[Outcome]
    OUTCOME_THROTTLED: _ClassVar[Outcome]
    OUTCOME_ERROR: _ClassVar[Outcome]
    OUTCOME_TIMEOUT: _ClassVar[Outcome]

class LatencySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LATENCY_SOURCE_UNSPECIFIED: _ClassVar[LatencySource]
    LATENCY_SOURCE_PRIOR: _ClassVar[LatencySource]
    LATENCY_SOURCE_OBSERVED: _ClassVar[LatencySource]

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]
PATTERN_UNSPECIFIED: Pattern
PATTERN_BEDROCK_PROVISIONED: Pattern
PATTERN_BEDROCK_ON_DEMAND: Pattern
PATTERN_SAGEMAKER_REALTIME: Pattern
PATTERN_SAGEMAKER_SERVERLESS: Pattern
PATTERN_LAMBDA_ON_DEMAND: Pattern
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_OK: Outcome
OUTCOME_THROTTLED: Outcome
OUTCOME_ERROR: Outcome
OUTCOME_TIMEOUT: Outcome
LATENCY_SOURCE_UNSPECIFIED: LatencySource
LATENCY_SOURCE_PRIOR: LatencySource
LATENCY_SOURCE_OBSERVED: LatencySource
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState

class Target(_message.Message):
    __slots__ = ("name", "pattern", "model_id", "region", "tier")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    name: str
    pattern: Pattern
    model_id: str
    region: str
    tier: str
    def __init__(self, name: _Optional[str] = ..., pattern: _Optional[_Union[Pattern, str]] = ..., model_id: _Optional[str] = ..., region: _Optional[str] = ..., tier: _Optional[str] = ...) -> None: ...

class ChooseRequest(_message.Message):
    __slots__ = ("request_class", "session_id", "budget_ms", "input_tokens", "output_tokens", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_CLASS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    request_class: str
    session_id: str
    budget_ms: float
    input_tokens: int
    output_tokens: int
    tags: _containers.ScalarMap[str, str]
    def __init__(self, request_class: _Optional[str] = ..., session_id: _Optional[str] = ..., budget_ms: _Optional[float] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ChooseResponse(_message.Message):
    __slots__ = ("decision_id", "target", "fallbacks", "reason", "request_class", "policy")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CLASS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    target: Target
    fallbacks: _containers.RepeatedCompositeFieldContainer[Target]
    reason: str
    request_class: str
    policy: str
    def __init__(self, decision_id: _Optional[str] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., fallbacks: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., reason: _Optional[str] = ..., request_class: _Optional[str] = ..., policy: _Optional[str] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("decision_id", "target_name", "outcome", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "error_code", "cache_read_input_tokens", "cache_write_input_tokens")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    target_name: str
    outcome: Outcome
    latency_ms: float
    ttft_ms: float
    input_tokens: int
    output_tokens: int
    error_code: str
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    def __init__(self, decision_id: _Optional[str] = ..., target_name: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., latency_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., error_code: _Optional[str] = ..., cache_read_input_tokens: _Optional[int] = ..., cache_write_input_tokens: _Optional[int] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportStreamRequest(_message.Message):
    __slots__ = ("decision_id", "target_name", "outcome", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "error_code", "cache_read_input_tokens", "cache_write_input_tokens")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    target_name: str
    outcome: Outcome
    latency_ms: float
    ttft_ms: float
    input_tokens: int
    output_tokens: int
    error_code: str
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    def __init__(self, decision_id: _Optional[str] = ..., target_name: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., latency_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., error_code: _Optional[str] = ..., cache_read_input_tokens: _Optional[int] = ..., cache_write_input_tokens: _Optional[int] = ...) -> None: ...

class ReportStreamResponse(_message.Message):
    __slots__ = ("accepted", "rejected", "rejections")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: int
    rejections: _containers.RepeatedCompositeFieldContainer[ReportRejection]
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[ReportRejection, _Mapping]]] = ...) -> None: ...

class ReportRejection(_message.Message):
    __slots__ = ("index", "message", "field")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    index: int
    message: str
    field: str
    def __init__(self, index: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: bool = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("primary", "targets", "routes", "window_s", "serving", "fleet", "pin")
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    FLEET_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    primary: str
    targets: _containers.RepeatedCompositeFieldContainer[TargetStats]
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    window_s: float
    serving: bool
    fleet: FleetView
    pin: PrimaryPin
    def __init__(self, primary: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[TargetStats, _Mapping]]] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., window_s: _Optional[float] = ..., serving: bool = ..., fleet: _Optional[_Union[FleetView, _Mapping]] = ..., pin: _Optional[_Union[PrimaryPin, _Mapping]] = ...) -> None: ...

class PrimaryPin(_message.Message):
    __slots__ = ("target", "reason", "by", "until")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    target: str
    reason: str
    by: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, target: _Optional[str] = ..., reason: _Optional[str] = ..., by: _Optional[str] = ..., until: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FleetView(_message.Message):
    __slots__ = ("unix_time", "replicas", "primary", "primary_epoch", "ejections", "others_tokens_per_minute", "others_requests_per_second", "others_spend_usd")
    class OthersTokensPerMinuteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class OthersRequestsPerSecondEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    UNIX_TIME_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_EPOCH_FIELD_NUMBER: _ClassVar[int]
    EJECTIONS_FIELD_NUMBER: _ClassVar[int]
    OTHERS_TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    OTHERS_REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OTHERS_SPEND_USD_FIELD_NUMBER: _ClassVar[int]
    unix_time: float
    replicas: int
    primary: str
    primary_epoch: int
    ejections: _containers.RepeatedCompositeFieldContainer[FleetEjection]
    others_tokens_per_minute: _containers.ScalarMap[str, float]
    others_requests_per_second: _containers.ScalarMap[str, float]
    others_spend_usd: float
    def __init__(self, unix_time: _Optional[float] = ..., replicas: _Optional[int] = ..., primary: _Optional[str] = ..., primary_epoch: _Optional[int] = ..., ejections: _Optional[_Iterable[_Union[FleetEjection, _Mapping]]] = ..., others_tokens_per_minute: _Optional[_Mapping[str, float]] = ..., others_requests_per_second: _Optional[_Mapping[str, float]] = ..., others_spend_usd: _Optional[float] = ...) -> None: ...

class FleetEjection(_message.Message):
    __slots__ = ("target", "replica", "state", "reason")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    target: str
    replica: str
    state: str
    reason: str
    def __init__(self, target: _Optional[str] = ..., replica: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Percentiles(_message.Message):
    __slots__ = ("p50", "p90", "p99")
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    p50: float
    p90: float
    p99: float
    def __init__(self, p50: _Optional[float] = ..., p90: _Optional[float] = ..., p99: _Optional[float] = ...) -> None: ...

class Breaker(_message.Message):
    __slots__ = ("state", "reason", "ejections", "until")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EJECTIONS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    state: BreakerState
    reason: str
    ejections: int
    until: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[BreakerState, str]] = ..., reason: _Optional[str] = ..., ejections: _Optional[int] = ..., until: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OutcomeCounts(_message.Message):
    __slots__ = ("ok", "throttled", "error", "timeout")
    OK_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ok: int
    throttled: int
    error: int
    timeout: int
    def __init__(self, ok: _Optional[int] = ..., throttled: _Optional[int] = ..., error: _Optional[int] = ..., timeout: _Optional[int] = ...) -> None: ...

class TargetStats(_message.Message):
    __slots__ = ("target", "latency_ms", "latency_source", "ttft_ms", "samples", "requests", "outcomes", "error_rate", "throttle_rate", "tokens_per_minute", "requests_per_second", "utilization", "in_flight", "breaker")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_RATE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    target: Target
    latency_ms: Percentiles
    latency_source: LatencySource
    ttft_ms: Percentiles
    samples: int
    requests: int
    outcomes: OutcomeCounts
    error_rate: float
    throttle_rate: float
    tokens_per_minute: float
    requests_per_second: float
    utilization: float
    in_flight: int
    breaker: Breaker
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., latency_ms: _Optional[_Union[Percentiles, _Mapping]] = ..., latency_source: _Optional[_Union[LatencySource, str]] = ..., ttft_ms: _Optional[_Union[Percentiles, _Mapping]] = ..., samples: _Optional[int] = ..., requests: _Optional[int] = ..., outcomes: _Optional[_Union[OutcomeCounts, _Mapping]] = ..., error_rate: _Optional[float] = ..., throttle_rate: _Optional[float] = ..., tokens_per_minute: _Optional[float] = ..., requests_per_second: _Optional[float] = ..., utilization: _Optional[float] = ..., in_flight: _Optional[int] = ..., breaker: _Optional[_Union[Breaker, _Mapping]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("request_class", "policy", "candidates", "excluded", "probes")
    REQUEST_CLASS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    request_class: str
    policy: str
    candidates: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[Exclusion]
    probes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_class: _Optional[str] = ..., policy: _Optional[str] = ..., candidates: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[Exclusion, _Mapping]]] = ..., probes: _Optional[_Iterable[str]] = ...) -> None: ...

class Exclusion(_message.Message):
    __slots__ = ("target", "reason")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    target: str
    reason: str
    def __init__(self, target: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WatchSwitchesRequest(_message.Message):
    __slots__ = ("include_history",)
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    include_history: bool
    def __init__(self, include_history: bool = ...) -> None: ...

class WatchSwitchesResponse(_message.Message):
    __slots__ = ("from_target", "to_target", "reason", "time", "router_clock_ns")
    FROM_TARGET_FIELD_NUMBER: _ClassVar[int]
    TO_TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_CLOCK_NS_FIELD_NUMBER: _ClassVar[int]
    from_target: str
    to_target: str
    reason: str
    time: _timestamp_pb2.Timestamp
    router_clock_ns: int
    def __init__(self, from_target: _Optional[str] = ..., to_target: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., router_clock_ns: _Optional[int] = ...) -> None: ...

class SwitchEvent(_message.Message):
    __slots__ = ("from_target", "to_target", "reason", "time", "router_clock_ns")
    FROM_TARGET_FIELD_NUMBER: _ClassVar[int]
    TO_TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_CLOCK_NS_FIELD_NUMBER: _ClassVar[int]
    from_target: str
    to_target: str
    reason: str
    time: _timestamp_pb2.Timestamp
    router_clock_ns: int
    def __init__(self, from_target: _Optional[str] = ..., to_target: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., router_clock_ns: _Optional[int] = ...) -> None: ...

class EjectRequest(_message.Message):
    __slots__ = ("target_name", "reason", "duration_s", "operator")
    TARGET_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    target_name: str
    reason: str
    duration_s: float
    operator: str
    def __init__(self, target_name: _Optional[str] = ..., reason: _Optional[str] = ..., duration_s: _Optional[float] = ..., operator: _Optional[str] = ...) -> None: ...

class EjectResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: AdminAction
    def __init__(self, action: _Optional[_Union[AdminAction, _Mapping]] = ...) -> None: ...

class RestoreRequest(_message.Message):
    __slots__ = ("target_name", "reason", "operator")
    TARGET_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    target_name: str
    reason: str
    operator: str
    def __init__(self, target_name: _Optional[str] = ..., reason: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class RestoreResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: AdminAction
    def __init__(self, action: _Optional[_Union[AdminAction, _Mapping]] = ...) -> None: ...

class PinPrimaryRequest(_message.Message):
    __slots__ = ("target_name", "reason", "duration_s", "operator")
    TARGET_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    target_name: str
    reason: str
    duration_s: float
    operator: str
    def __init__(self, target_name: _Optional[str] = ..., reason: _Optional[str] = ..., duration_s: _Optional[float] = ..., operator: _Optional[str] = ...) -> None: ...

class PinPrimaryResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: AdminAction
    def __init__(self, action: _Optional[_Union[AdminAction, _Mapping]] = ...) -> None: ...

class UnpinPrimaryRequest(_message.Message):
    __slots__ = ("reason", "operator")
    REASON_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    reason: str
    operator: str
    def __init__(self, reason: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class UnpinPrimaryResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: AdminAction
    def __init__(self, action: _Optional[_Union[AdminAction, _Mapping]] = ...) -> None: ...

class AdminAction(_message.Message):
    __slots__ = ("action", "target", "reason", "by", "until", "changed", "time")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    action: str
    target: str
    reason: str
    by: str
    until: _timestamp_pb2.Timestamp
    changed: bool
    time: _timestamp_pb2.Timestamp
    def __init__(self, action: _Optional[str] = ..., target: _Optional[str] = ..., reason: _Optional[str] = ..., by: _Optional[str] = ..., until: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., changed: bool = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("primary_switch", "breaker", "admin", "reload")
    PRIMARY_SWITCH_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    RELOAD_FIELD_NUMBER: _ClassVar[int]
    primary_switch: SwitchEvent
    breaker: BreakerEvent
    admin: AdminAction
    reload: ConfigReload
    def __init__(self, primary_switch: _Optional[_Union[SwitchEvent, _Mapping]] = ..., breaker: _Optional[_Union[BreakerEvent, _Mapping]] = ..., admin: _Optional[_Union[AdminAction, _Mapping]] = ..., reload: _Optional[_Union[ConfigReload, _Mapping]] = ...) -> None: ...

class BreakerEvent(_message.Message):
    __slots__ = ("target", "from_state", "to_state", "reason", "time", "router_clock_ns")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_CLOCK_NS_FIELD_NUMBER: _ClassVar[int]
    target: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    time: _timestamp_pb2.Timestamp
    router_clock_ns: int
    def __init__(self, target: _Optional[str] = ..., from_state: _Optional[_Union[BreakerState, str]] = ..., to_state: _Optional[_Union[BreakerState, str]] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., router_clock_ns: _Optional[int] = ...) -> None: ...

class ConfigReload(_message.Message):
    __slots__ = ("source", "accepted", "detail", "time", "router_clock_ns")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_CLOCK_NS_FIELD_NUMBER: _ClassVar[int]
    source: str
    accepted: bool
    detail: str
    time: _timestamp_pb2.Timestamp
    router_clock_ns: int
    def __init__(self, source: _Optional[str] = ..., accepted: bool = ..., detail: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., router_clock_ns: _Optional[int] = ...) -> None: ...
