"""Drop-in routing for code that takes a boto3 bedrock-runtime client or a boto3 Session.

::

    import mangaroute
    from langchain_aws import ChatBedrockConverse

    bedrock = mangaroute.bedrock_runtime(mangaroute.Router.default())
    llm = ChatBedrockConverse(client=bedrock, model="mangaroute/simple", provider="anthropic")
    with mangaroute.context(session_id="user-42", budget_ms=1500):
        llm.invoke("Which volume comes next?")

See ``docs/dropin.md``.
"""

from mangaroute.dropin.client import RoutedBedrockRuntime, RoutedStreamResponse, bedrock_runtime
from mangaroute.dropin.routing_context import (
    BUDGET_KEY,
    SESSION_KEY,
    RoutingContext,
    context,
    current_context,
)
from mangaroute.dropin.session import RoutedSession, routed_session

__all__ = [
    "BUDGET_KEY",
    "SESSION_KEY",
    "RoutedBedrockRuntime",
    "RoutedSession",
    "RoutedStreamResponse",
    "RoutingContext",
    "bedrock_runtime",
    "context",
    "current_context",
    "routed_session",
]
