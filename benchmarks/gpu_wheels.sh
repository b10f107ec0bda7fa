#!/usr/bin/env bash
# Fill .whl/ (ignored through .git/info/exclude) with exactly the wheels that the lent GPU machine
# (nvidia-h200: Python 3.12, x86-64, no network) lacks for scglassbox's GPU checks, then check
# that every requirement of every carried wheel (and of scglassbox) is either on that machine or
# carried. Run HERE, where pip reaches the registry; then call the device tool with
# carry [".whl"] (see DEVELOPERS.md, "GPU checks", and benchmarks/gpu_check.sh).
#
#   bash benchmarks/gpu_wheels.sh          # about 25 MiB, well under the 64 MiB a call carries
#
# Versions are those of the project's local venv (what the test suite runs against). Carried
# beside the missing packages: pandas 2.3.3, pytz and tzdata. The GPU image lists pandas but
# neither pytz nor tzdata, which pandas 2 needs, so its pandas is 3.x, and anndata 0.12.19 pins
# pandas<3. Unpacked into /tmp/site ahead of the image's packages, the carried pandas is the one
# imported (benchmarks/gpu_check.sh falls back to the image's pandas if it will not import).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"

# Pure-python wheels (any platform), then compiled ones (cp312 manylinux x86-64).
PURE=(
  anndata==0.12.19 scanpy==1.11.5 umap-learn==0.5.12 pynndescent==0.6.0
  array-api-compat==1.16.0 legacy-api-wrap==1.5 natsort==8.4.0 scverse-misc==0.0.3
  session-info2==0.4.1 zarr==3.1.6 donfig==0.8.1.post1 pytz==2026.6 tzdata==2026.6
)
COMPILED=(pandas==2.3.3 numcodecs==0.16.6 google-crc32c==1.9.0)

rm -rf .whl
mkdir .whl
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none "${platforms[@]}" --platform any -d .whl \
  "${PURE[@]}" "${COMPILED[@]}"

# Check the closure: every requirement (markers evaluated for CPython 3.12 on x86-64 Linux,
# extras skipped) of the carried wheels and of scglassbox itself is on the GPU machine or carried
# (and then satisfied by the carried version). One version per package: two stop the install.
"$PY" - <<'EOF'
import re
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip vendors packaging
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

# /work/.library/device/KINDS.md, "Python packages already there" (nvidia-h200, read 2026-11-17).
DEVICE = set(map(canonicalize_name, """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio
h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime
onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson
six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect
urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split()))
ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}

carried, requires = {}, {}
for whl in sorted(Path(".whl").glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        meta = Parser().parsestr(
            z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        )
    name = canonicalize_name(meta["Name"])
    if name in carried:
        sys.exit(f"two versions of {name}: {carried[name]} and {meta['Version']}")
    carried[name] = meta["Version"]
    requires[f"{name} {meta['Version']}"] = meta.get_all("Requires-Dist") or []
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
requires["scglassbox (pyproject.toml)"] = project["dependencies"]

problems = []
for who, reqs in requires.items():
    for line in reqs:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(ENV):
            continue
        name = canonicalize_name(req.name)
        if name in carried:
            if carried[name] not in req.specifier:
                problems.append(f"{who} needs {req}, carried {name} {carried[name]}")
        elif name not in DEVICE:
            problems.append(f"{who} needs {req}: neither on the GPU machine nor carried")
needless = [n for n in carried if n in DEVICE and n != "pandas"]
if needless:
    problems.append(f"already on the GPU machine, carried anyway: {needless}")
for name, version in sorted(carried.items()):
    print(f"  {name} {version}")
if problems:
    sys.exit("\n".join(["closure check FAILED:", *problems]))
print(f"closure check: OK ({len(carried)} wheels; every other requirement is on the GPU machine)")
EOF

total=$(du -cb .whl/*.whl | tail -1 | cut -f1)
echo ".whl: $(ls .whl/*.whl | wc -l) wheels, $((total / 1024)) KiB"
if ((total > 50 * 1024 * 1024)); then
  echo "too large for the 64 MiB a device call carries (with the working tree)" >&2
  exit 1
fi
