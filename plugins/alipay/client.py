"""python-alipay-sdk, corrected where it is wrong for us.

The SDK signs our requests and calls the gateway; four things in it are not right:

- ``build_body`` stamps ``timestamp`` with the server's local time; Alipay reads it as
  Beijing time (UTC+8). We send Beijing time whatever the server's zone.
- ``_get_string_to_be_signed`` finds the signed part of a response by counting braces, so a
  ``}`` inside a string value (a subject, a body) cuts it short and a genuine response fails
  to verify. We find it with a JSON scanner: the exact text of the ``<method>_response`` value.
- it parses its keys at each client it makes, with pycryptodome's primality checks (~40 ms
  a private key); we parse each key text once per process (``_imported``).
- ``verify`` (for notifications) keeps empty values in the string it verifies, while Alipay
  leaves them out when it signs. We do not use it: notifications go through
  ``plugins.rsa2.verify``. And its response check knows one Alipay public key; we verify with
  ``response_keys``: any configured key (so the key can be rotated), or in certificate mode
  the key of the certificate the response names (``certificates.CertificateClient``).
"""

import functools
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from alipay import AliPay
from alipay.exceptions import AliPayValidationError
from alipay.utils import AliPayConfig
from Cryptodome.PublicKey import RSA

from .. import rsa2
from ..alipay_protocol import TIME_FORMAT

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
_WHITESPACE = " \t\n\r"


def beijing_now() -> datetime:
    """The wall-clock time in Beijing now, naive (as Alipay's fields carry it)."""
    return datetime.now(BEIJING).replace(tzinfo=None)


def beijing_timestamp() -> str:
    return beijing_now().strftime(TIME_FORMAT)


def beijing_time(moment: datetime) -> str:
    """``moment`` (the shop's clock: naive local time, or aware) as Alipay reads times: Beijing,
    ``yyyy-MM-dd HH:mm:ss``. The seconds' fraction is dropped: a deadline comes no later."""
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


@functools.lru_cache(maxsize=16)
def _imported(pem: str) -> RSA.RsaKey:
    """The SDK's parse of a key (immutable, so clients may share it), done once per key text."""
    return RSA.import_key(pem)


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def signed_content(raw: str, response_type: str) -> str | None:
    """The exact text of the top-level ``response_type`` member of the JSON object ``raw``.

    That text (not a re-serialisation) is what the gateway signed. Strings are scanned as
    JSON strings, so braces, quotes and escapes inside values count for nothing. None when the
    member is missing; ValueError when ``raw`` is not a JSON object.
    """
    decoder = json.JSONDecoder()
    index = _skip(raw, 0)
    if raw[index : index + 1] != "{":
        raise ValueError("the response is not a JSON object")
    index = _skip(raw, index + 1)
    while index < len(raw) and raw[index] != "}":
        key, index = decoder.raw_decode(raw, index)
        index = _skip(raw, index)
        if not isinstance(key, str) or raw[index : index + 1] != ":":
            raise ValueError(f"malformed JSON object near offset {index}")
        start = _skip(raw, index + 1)
        _, end = decoder.raw_decode(raw, start)
        if key == response_type:
            return raw[start:end]
        index = _skip(raw, end)
        if raw[index : index + 1] == ",":
            index = _skip(raw, index + 1)
    return None


class AlipayClient(AliPay):
    """The SDK's ``AliPay`` (RSA2) with Beijing timestamps, exact response extraction and key rotation.

    ``gateway`` is called for each request, so a gateway whose address is only known later
    can be resolved then. The offline gateway mounted in the shop (``mounted``) is called in
    process: no address is needed, and the shop's CLI reaches the same trades as its server.
    """

    #: The offline gateway mounted in this shop, with ``answer(params) -> JSON text``; None: over HTTP.
    mounted = None

    def __init__(self, app_id, private_key, alipay_public_keys, gateway, timeout=15.0):
        keys = tuple(alipay_public_keys)
        super().__init__(
            appid=app_id,
            app_private_key_string=rsa2.private_pem(private_key).decode("ascii"),
            alipay_public_key_string=rsa2.public_pem(keys[0]).decode("ascii"),
            sign_type="RSA2",
            config=AliPayConfig(timeout=timeout),
        )
        self._public_keys = keys
        self._gateway_of = gateway

    # The SDK reads ``self._gateway`` when it calls out and sets it in ``__init__``.
    @property
    def _gateway(self):
        return self._gateway_of()

    @_gateway.setter
    def _gateway(self, _value):
        pass  # the SDK's production default: ours comes from the settings

    def _load_key(self):
        self._app_private_key = _imported(self._app_private_key_string)
        self._alipay_public_key = _imported(self._alipay_public_key_string)

    def verified_sync_response(self, data, response_type):
        if self.mounted is None:
            return super().verified_sync_response(data, response_type)
        params = dict(parse_qsl(self.sign_data(data), keep_blank_values=True))
        return self._verify_and_return_sync_response(self.mounted.answer(params), response_type)

    def build_body(self, method, biz_content=None, **kwargs):
        data = super().build_body(method, biz_content, **kwargs)
        data["timestamp"] = beijing_timestamp()
        return data

    def response_keys(self, response: dict) -> tuple:
        """The keys a signed ``response`` (the parsed JSON) may be verified with."""
        return self._public_keys

    def _verify_and_return_sync_response(self, raw_string, response_type):
        """The SDK's check (an unsigned answer is an AliPayException), with our keys."""
        response = json.loads(raw_string)
        if "sign" not in response or "error_response" in response:
            return super()._verify_and_return_sync_response(raw_string, response_type)
        content = self._get_string_to_be_signed(raw_string, response_type)
        if not rsa2.verify_text(content, response["sign"], self.response_keys(response)):
            raise AliPayValidationError
        return json.loads(content)

    def _get_string_to_be_signed(self, raw_string, response_type):
        try:
            content = signed_content(raw_string, response_type)
        except ValueError:
            content = None
        if content is None:
            raise AliPayValidationError
        return content
