"""Stand-in for the pip bootstrap script ansible-test downloads (get-pip-<version>.py).

The upstream script is served from outside the package registries this project may use, so
tests/sanity/run places this file in ansible-test's cache instead. ansible-test runs it inside a
fresh venv created without pip, with pip options and pinned packages as arguments: install the
stdlib's bundled pip with ensurepip, then let that pip install the requested versions.
"""
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                       *[arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]])
