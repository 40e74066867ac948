"""Install gmall-payment in a fresh venv, then this distribution, then uninstall it: pay.html and
``gmall-payment providers`` offer WeChat Pay exactly while it is installed (run by ``tox -e wechatpay``).

Usage: python distributions/wechatpay/check_install.py  (from the shop's checkout; pip's cache makes it quick)
"""

import subprocess
import sys
import tempfile
import textwrap
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = Path(__file__).resolve().parent

#: Run inside the fresh venv: the demo shop's pay.html for demo's first order, as its shopper sees it.
PAY_PAGE = textwrap.dedent("""
    import re, sys, tempfile
    from gmall_payment.adapters.sql import demo
    from gmall_payment.adapters.sql.models import Order, db
    from gmall_payment.webapp import create_app

    folder = tempfile.mkdtemp()
    app = create_app({"TESTING": True, "INSTANCE_PATH": folder, "DATABASE_URL": f"sqlite:///{folder}/shop.db",
                      "SECRET_KEY": "test-only"})
    with app.app_context():
        db.create_all()
        demo.seed(app.extensions["gmall"].seckill)
        order_sn = db.session.scalars(db.select(Order.order_sn).where(Order.status == 0)).first()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "demo", "password": "demo123", "csrf_token": token})
    page = client.get("/pay.html", query_string={"orderToken": order_sn}).text
    print(" ".join(name for name in ("mockpay", "alipay", "wechatpay") if f"/pay/{name}" in page))
""")


def run(*args, **kwargs) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def offered(bin_dir: Path) -> tuple[str, str]:
    """(providers on pay.html, providers `gmall-payment providers` lists)."""
    page = run(str(bin_dir / "python"), "-c", PAY_PAGE).strip()
    listed = " ".join(
        line.split(":")[0].split()[1]
        for line in run(str(bin_dir / "gmall-payment"), "providers", cwd=tempfile.mkdtemp()).splitlines()
        if line.startswith("provider ")
    )
    return page, listed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wechatpay-install-") as folder:
        venv.create(folder, with_pip=True)
        bin_dir = Path(folder) / "bin"
        pip = (str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check")
        run(*pip, "-e", str(ROOT))
        steps = [
            ("gmall-payment alone", None),
            ("with gmall-payment-wechatpay", ("install", "-e", str(DISTRIBUTION))),
            ("after uninstalling it", ("uninstall", "-y", "gmall-payment-wechatpay")),
        ]
        expected = {
            "gmall-payment alone": False,
            "with gmall-payment-wechatpay": True,
            "after uninstalling it": False,
        }
        failed = False
        for name, pip_args in steps:
            if pip_args:
                run(str(bin_dir / "python"), "-m", "pip", "-q", "--disable-pip-version-check", *pip_args)
            page, listed = offered(bin_dir)
            ok = (
                all(("wechatpay" in found.split()) == expected[name] for found in (page, listed))
                and "alipay" in page.split()
                and "mockpay" in page.split()
            )
            failed |= not ok
            print(f"{'ok' if ok else 'FAILED'}: {name}: pay.html offers [{page}], providers lists [{listed}]")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
