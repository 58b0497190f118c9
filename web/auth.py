"""Who is calling: the seam where API keys will plug in.

Until keys exist every request acts for the default tenant (None), which sees
every run.
"""

from __future__ import annotations

import falcon


class TenantContext:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.tenant_id = None
