"""The till's use cases: checkout, returns, card lookup, program set-up.

Below them is the store (:mod:`tillgate.agent.store`) and the shared kernel
(:mod:`tillgate.core`); above them the edges (POS API, interception, devices, sync) that
hold a :class:`TillService`.
"""

from .context import TillSettings
from .request import SaleLine, SaleRequest, sale_request
from .service import TillService

__all__ = ["SaleLine", "SaleRequest", "TillService", "TillSettings", "sale_request"]
