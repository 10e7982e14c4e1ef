"""Installs temporal_icl: in-context linear regression under non-stationary task sets."""

import setuptools

# Version ranges are the ones the test suite has been run against (see README, "Install").
INSTALL_REQUIRES = [
    "absl-py>=2.1,<3",
    "clu==0.0.12",
    "dm-haiku>=0.0.16,<0.0.18",
    "gin-config>=0.5,<0.6",
    "jax>=0.10.2,<0.11",
    "matplotlib>=3.9,<4",
    "ml-collections>=1.1,<2",
    "numpy>=2.0,<3",
    "optax>=0.2.8,<0.3",
    "orbax-checkpoint>=0.12.8,<0.13",
    # CLU's TensorBoard writer imports TensorFlow; the CPU build is enough.
    "tensorboard>=2.21,<2.22",
    "tensorflow-cpu>=2.21,<2.22",
    "tensorflow-datasets>=4.9.10,<4.10",
]

EXTRAS_REQUIRE = {
    # pytest-xdist: the suite runs on every core (pytest.ini), 1.4x faster on 2 cores.
    "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "scipy>=1.13,<2"],
    # XManager for launch/xm_launch.py.  Unpinned, pip backtracks for > 10 minutes
    # through google-cloud-* releases; with these pins it resolves in about a minute.
    "launch": [
        "xmanager==0.8.5.post1",
        "protobuf>=6.31.1,<7",
        "google-cloud-aiplatform==2.7.0",
        "google-cloud-bigquery==3.47.0",
    ],
}

setuptools.setup(
    name="temporal_icl",
    version="0.3.0",
    description=(
        "Non-stationary task distributions and the inductive biases of small "
        "transformers trained on in-context linear regression."
    ),
    # configs/ is installed too, so that config files (`from configs import base`) and
    # the gin files they name (configs/model/*.gin, read through importlib.resources)
    # work from any directory, not only from the checkout.
    packages=setuptools.find_packages(include=["temporal_icl", "temporal_icl.*", "configs"]),
    package_data={"configs": ["model/*.gin"]},
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
