"""``wechatpay-sandbox``: the offline WeChat Pay gateway served alone, on a port of its own.

For a shop configured against it as against WeChat Pay (``WECHATPAY_PRIVATE_KEY_FILE`` and the
rest set, ``WECHATPAY_API_URL`` this gateway), e.g. a shop on another host or in PRODUCTION-like
staging; the embedded shop needs none of this (it mounts the gateway at ``/wechatpay-sandbox``).
Its keys are generated once into ``<instance>/wechatpay/`` (the folder the embedded shop uses,
so both share them), or read from the files given. It moves no money: never point a production
shop at it.
"""

import argparse
import os
import sys
from pathlib import Path

from werkzeug.serving import make_server

from gmall_payment.plugins import rsa2

from .config import (
    DEFAULTS,
    NOTIFY_SCHEDULE,
    OFFLINE_APPID,
    OFFLINE_MCHID,
    OFFLINE_MERCHANT_SERIAL,
    OFFLINE_PUBLIC_KEY_ID,
    GatewayConfig,
    offline_apiv3_key,
)
from .gateway import GatewayApp


def _read_key(path: str, load, what: str):
    try:
        return load(Path(path).read_bytes())
    except OSError as error:
        raise SystemExit(f"wechatpay-sandbox: {what} {path}: {error.strerror}") from None
    except ValueError as error:
        raise SystemExit(f"wechatpay-sandbox: {what} {path}: {error}") from None


def _apiv3_key(path: str) -> bytes:
    try:
        key = Path(path).read_text("utf-8").strip().encode("utf-8")
    except OSError as error:
        raise SystemExit(f"wechatpay-sandbox: --apiv3-key-file {path}: {error.strerror}") from None
    if len(key) != 32:
        raise SystemExit(
            f"wechatpay-sandbox: --apiv3-key-file {path}: an APIv3 key is 32 bytes, not {len(key)}"
        )
    return key


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wechatpay-sandbox",
        description="The offline WeChat Pay gateway (API v3) served alone, for a shop configured against it; no money moves.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5002, help="0: any free port (the first line says which)")
    p.add_argument(
        "--instance",
        default=os.environ.get("GMALL_INSTANCE_PATH") or "instance",
        help="keys not given as files are generated once into INSTANCE/wechatpay/",
    )
    p.add_argument(
        "--private-key",
        metavar="FILE",
        help="the gateway's private key (PEM), which signs its answers and notifications",
    )
    p.add_argument(
        "--merchant-public-key",
        metavar="FILE",
        help="the merchant's public key (PEM), which verifies the shop's requests",
    )
    p.add_argument(
        "--apiv3-key-file", metavar="FILE", help="the 32-character APIv3 key that encrypts notifications"
    )
    p.add_argument("--mchid", default=OFFLINE_MCHID, help="the merchant (商户号) it serves")
    p.add_argument("--appid", default=OFFLINE_APPID, help="the APPID bound to the merchant")
    p.add_argument(
        "--notify-speedup",
        type=float,
        default=DEFAULTS["WECHATPAY_SANDBOX_NOTIFY_SPEEDUP"],
        help="divides WeChat Pay's notify retry series (1: the real one)",
    )
    return p


def gateway_config(args) -> GatewayConfig:
    """The gateway's configuration: the files given, else the keys of ``INSTANCE/wechatpay/`` (made once)."""
    folder = Path(args.instance) / "wechatpay"
    if args.notify_speedup <= 0:
        raise SystemExit("wechatpay-sandbox: --notify-speedup must be > 0 (1 is WeChat Pay's real schedule)")
    return GatewayConfig(
        mchid=args.mchid,
        appid=args.appid,
        private_key=(
            _read_key(args.private_key, rsa2.load_private_key, "--private-key")
            if args.private_key
            else rsa2.ensure_key_pair(folder, "gateway")[0]
        ),
        public_key_id=OFFLINE_PUBLIC_KEY_ID,
        merchant_serial=OFFLINE_MERCHANT_SERIAL,
        merchant_public_key=(
            _read_key(args.merchant_public_key, rsa2.load_public_key, "--merchant-public-key")
            if args.merchant_public_key
            else rsa2.ensure_key_pair(folder, "merchant")[1]
        ),
        apiv3_key=(
            _apiv3_key(args.apiv3_key_file)
            if args.apiv3_key_file
            else offline_apiv3_key({"INSTANCE_PATH": args.instance})
        ),
        schedule=tuple(wait / args.notify_speedup for wait in NOTIFY_SCHEDULE),
    )


def _shop_settings(args, config: GatewayConfig, url: str) -> list[str]:
    """The shop's settings against this gateway (file paths and commands, never a key itself)."""
    folder = Path(args.instance).resolve() / "wechatpay"
    public_key = (
        f"{folder}/gateway_public.pem" if not args.private_key else "<the public half of --private-key>"
    )
    merchant_key = (
        f"{folder}/merchant_private.pem"
        if not args.merchant_public_key
        else "<the private half of --merchant-public-key>"
    )
    apiv3 = (
        f"$(cat {folder}/apiv3_key)"
        if not args.apiv3_key_file
        else f"$(cat {Path(args.apiv3_key_file).resolve()})"
    )
    return [
        f"GMALL_WECHATPAY_API_URL={url}",
        f"GMALL_WECHATPAY_MCHID={config.mchid}",
        f"GMALL_WECHATPAY_APPID={config.appid}",
        f"GMALL_WECHATPAY_PRIVATE_KEY_FILE={merchant_key}",
        f"GMALL_WECHATPAY_CERT_SERIAL_NO={config.merchant_serial}",
        f"GMALL_WECHATPAY_APIV3_KEY={apiv3}",
        f"GMALL_WECHATPAY_PUBLIC_KEYS={config.public_key_id}={public_key}",
    ]


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    try:
        config = gateway_config(args)
    except (ValueError, OSError) as error:
        raise SystemExit(f"wechatpay-sandbox: {error}") from None
    server = make_server(args.host, args.port, GatewayApp(config), threaded=True)
    url = f"http://{args.host}:{server.server_port}"
    print(
        f"offline WeChat Pay gateway at {url}  (mchid {config.mchid}, appid {config.appid}); no money moves",
        flush=True,
    )
    print("configure the shop with:")
    for line in _shop_settings(args, config, url):
        print(f"  {line}")
    print(f"the phone's page for a QR code: {url}/scan?code_url=<the code_url>", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
