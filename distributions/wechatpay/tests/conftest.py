"""The WeChat Pay distribution's tests run from the shop's checkout, beside its tests (setup.cfg
puts tests/ on the path, for support.shop); this folder goes there too, for wechat_support."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
