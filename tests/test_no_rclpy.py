"""sdpg_core must never import rclpy (it is the ROS-free library)."""

import pkgutil
import subprocess
import sys

import sdpg_core


def test_sdpg_core_never_imports_rclpy():
    modules = [m.name for m in pkgutil.walk_packages(sdpg_core.__path__, "sdpg_core.")]
    assert len(modules) > 10
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "roots = ('rclpy', 'rosidl_runtime_py')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
