"""The shop's calls to WeChat Pay API v3: each request signed, each answer verified before it is read."""

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from gmall_payment.core.errors import ProviderError

from . import apiv3
from .config import WechatPayConfig

#: Answers after which the same request, sent again, may succeed (WeChat Pay says so of these).
RETRYABLE = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANKERROR", "SYSTEMERROR"})


@dataclass(frozen=True)
class Answer:
    """A verified answer: HTTP status and JSON body ({} for 204)."""

    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self, error_type=ProviderError) -> ProviderError:
        code, message = str(self.body.get("code", "")), str(self.body.get("message", ""))
        return error_type(
            f"WeChat Pay {self.status} {code}: {message}",
            code=code,
            retryable=self.status >= 500 or code in RETRYABLE,
        )


class ApiClient:
    def __init__(self, config: WechatPayConfig):
        self.config = config
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Mapping | None = None) -> Answer:
        """Send a signed request; the answer once its signature holds, else ProviderError."""
        base = self.config.server_api_url()
        url = base + path
        text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        signed_path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
        headers = {
            "Accept": "application/json",
            "User-Agent": "gmall-payment-wechatpay",
            "Authorization": apiv3.authorization(
                method, signed_path, text, self.config.mchid, self.config.serial_no, self.config.private_key
            ),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            url, data=text.encode("utf-8") if body is not None else None, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                status, answer, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            with error:
                status, answer, answer_headers = error.code, error.read(), error.headers
        except OSError as error:
            raise ProviderError(f"WeChat Pay {method} {path} failed: {error}") from None
        answer_text = answer.decode("utf-8", "replace")
        try:
            apiv3.verify_headers(dict(answer_headers.items()), answer_text, self.config.wechat_keys)
        except apiv3.SignatureError as error:
            raise ProviderError(
                f"WeChat Pay's answer ({status}) is not believed: {error}", retryable=True
            ) from None
        try:
            parsed = json.loads(answer_text) if answer_text else {}
        except ValueError:
            raise ProviderError(f"WeChat Pay's answer ({status}) is not JSON") from None
        if not isinstance(parsed, dict):
            raise ProviderError(f"WeChat Pay's answer ({status}) is not a JSON object")
        return Answer(status, parsed)
