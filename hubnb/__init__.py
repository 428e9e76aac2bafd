"""hubnb: the Customer Hub and predictive CLV dashboards of an e-commerce merchant,
computed from the merchant's own data and written as executed Jupyter notebooks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hubnb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from .data import load_dataset  # noqa: E402
from .errors import DataError, HubnbError, NotEligibleError, ParamsError  # noqa: E402
from .params import load_params  # noqa: E402

__all__ = ["__version__", "load_dataset", "load_params", "DataError", "HubnbError",
           "NotEligibleError", "ParamsError"]
