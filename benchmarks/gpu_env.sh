# Sourced by the GPU check scripts: the environment every one of them needs on a
# bare GPU machine (run from the repository root).
#   OUT     folder the results go to (default gpu-out)
#   DATA    CIFAR-10 JPEG archive (default ../shared/data/cifar10-jpeg.tar.gz)
#   WHEELS  folder of wheels for what the machine lacks: optuna, sqlalchemy,
#           alembic (default .whl; copy ../shared/wheels-gpu/*.whl there)
OUT=${OUT:-gpu-out}
DATA=${DATA:-../shared/data/cifar10-jpeg.tar.gz}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT"
# A warm machine keeps /tmp/site from the call before: installed once per machine.
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
if ! python3 -c "import sqlalchemy, alembic, optuna" 2>/dev/null && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 RESZOO_HOME=${RESZOO_HOME:-/tmp/reszoo-home}
