"""The compiled part of the package: the OKX trade fast path (collectors/exchanges/okx/_fastparse.c).

Everything else is declared in pyproject.toml. ``optional=True``: without a C compiler the install still
succeeds and the parser runs its pure-Python fast path (collectors/exchanges/okx/fast.py logs which path is
active); tests/exchanges/test_okx_fastparse.py fails when the extension was not built, so CI proves it.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "collectors.exchanges.okx._fastparse",
            sources=["collectors/exchanges/okx/_fastparse.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
