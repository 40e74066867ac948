"""The shop's side of Alipay's daily bills: ask where the day's bill is, download it, read it.

``alipay.data.dataservice.bill.downloadurl.query`` (``bill_type`` trade, ``bill_date`` the
Beijing day) answers ``bill_download_url``, a zip good for a short while (``bill_file`` reads
it). The offline gateway mounted in the shop is read in process, as its other answers are.
"""

from datetime import date
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

from ...core.bills import Bill
from ...core.errors import ProviderError
from . import bill_file
from .bill_desk import BILL_QUERY, BillRefused

RESPONSE = "alipay_data_dataservice_bill_downloadurl_query_response"


def query_download_url(client, day: date) -> dict:
    """The signed query for the trade bill of ``day``, its verified answer."""
    data = client.build_body(BILL_QUERY, {"bill_type": "trade", "bill_date": f"{day:%Y-%m-%d}"})
    return client.verified_sync_response(data, RESPONSE)


def download(client, url: str | None, day: date, timeout: float) -> bytes:
    """The zip at ``url``: from the mounted gateway, or over http(s); ProviderError if it cannot be had."""
    if not url:
        raise ProviderError(f"Alipay answered no bill_download_url for {day}")
    if client.mounted is not None:
        try:
            return client.mounted.bill_file(url)[1]
        except BillRefused as refused:
            raise ProviderError(refused.message, sub_code=refused.sub_code, retryable=False) from None
    if urlsplit(url).scheme not in ("http", "https"):
        raise ProviderError(f"bill_download_url {url!r} is not an http(s) URL", retryable=False)
    try:
        with urlopen(url, timeout=timeout) as answer:
            return answer.read()
    except (URLError, OSError) as error:
        raise ProviderError(f"the bill of {day} could not be downloaded: {error}") from None


def daily_bill(provider, day: date) -> Bill:
    """``provider``'s (an ``AlipayProvider``) bill of ``day``, read: every line of it."""
    answer = provider._call(query_download_url, client=provider.client, day=day)
    data = download(provider.client, answer.get("bill_download_url"), day, provider.config.timeout)
    return bill_file.read(data, provider.name, day)
