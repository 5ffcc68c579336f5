"""Dataverse SMS connector: two-way SMS for Microsoft Dataverse / Dynamics 365."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dataverse-sms-connector")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
