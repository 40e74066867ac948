"""gmall-payment: payments and flash sales of the Guli Mall shop.

This folder is the ``gmall_payment`` package (see ``package_dir`` in setup.cfg), so the
top-level folders are its subpackages: ``gmall_payment.core``, ``gmall_payment.ports``, ...
"""

__version__ = "0.1.0"
