"""Sample values shared by the warehouse tests."""

from __future__ import annotations

from decimal import Decimal

from streams.domain.cdr import Cdr

T0 = 1_795_516_530_123_000  # 2026-11-24T10:35:30.123Z

CDR = Cdr(call_id="c-1", portal_id="p-1", direction="outbound", line="operator", from_="user:u-1",
          to="+79161234567", line_number=None, shown_number="+74951234567", extranet=False,
          user_id="u-1", started_at_us=T0, answered_at_us=T0 + 5_000_000, ended_at_us=T0 + 65_333_000,
          ring_s=Decimal("5.000"), talk_s=Decimal("60.333"), duration_s=Decimal("65.333"),
          status="answered", hangup_cause="normal", queue_attempts=0, forwarded_to=None,
          controller="checked", controller_result="ok", region="Russia mobile",
          rate_per_min=Decimal("1.50"), billed_s=61, cost=Decimal("1.53"), currency="RUB",
          recording_urls=("https://r.example/1.mp3", "https://r.example/2.mp3"), recording_bytes=1000,
          recording_s=Decimal("60.333"), events=7, unrated=False)
