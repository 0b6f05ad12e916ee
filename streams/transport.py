"""TEMPORARY alias while parallel branches still name the transport here; removed before the end."""
from streams.faust_fence.transport import Transport  # noqa: F401
