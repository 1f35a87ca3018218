"""ament_python package ``sdpg_ros``: the ROS-free library ``sdpg_core`` plus ROS 2 nodes."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sdpg_ros"


def tree(pattern: str) -> list[str]:
    """Files matching a recursive glob."""
    return sorted(p for p in glob(pattern, recursive=True) if not p.endswith("/"))


def share_tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing ``folder`` under share/<package>, keeping sub-folders."""
    entries: dict[str, list[str]] = {}
    for path in tree(f"{folder}/**/*.*"):
        target = f"share/{PACKAGE}/" + path.rsplit("/", 1)[0]
        entries.setdefault(target, []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["sdpg_core", "sdpg_core.*", "sdpg_ros", "sdpg_ros.*"]),
    package_data={"sdpg_core.envs": ["assets/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share_tree("launch"),
        *share_tree("config"),
        *share_tree("urdf"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="sdpg-ros maintainers",
    maintainer_email="maintainers@sdpg-ros.dev",
    description="SDPG visuomotor policies: MuJoCo training and ROS 2 deployment",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sdpg = sdpg_core.cli:main",
            "sdpg-ros = sdpg_ros.cli:main",
            "sim_backend = sdpg_ros.sim_backend:main",
            "policy_node = sdpg_ros.policy_node:main",
            "hardware_bridge = sdpg_ros.hardware_bridge:main",
            "trainer_node = sdpg_ros.trainer_node:main",
            "cmd_vel_source = sdpg_ros.command_source:main",
            "bag_recorder = sdpg_ros.bag_recorder:main",
        ],
    },
)
