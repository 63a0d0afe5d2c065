# The config, checked before any job is planned, and the plan of the run: every path, input,
# output, param and target the rules name is a call to PLAN (gradual_transfer.plan, tested
# without Snakemake in tests/test_plan.py). The rules keep their directives and constraints.
import sys
from pathlib import Path

# The library sits beside the Snakefile. Scripts find it through the link
# scripts/gradual_transfer (Snakemake puts a script's folder on its path, in any environment).
sys.path.insert(0, workflow.basedir)

from gradual_transfer.config import (
    BASE_CONFIG,
    ConfigError,
    load_config,
    merge,
    validate_config,
)
from gradual_transfer.claims import claims_warnings
from gradual_transfer.grid import SPEECH_EXPERIMENT, image_experiments, speech_studies
from gradual_transfer.io import OutdirInUse, hold_outdir
from gradual_transfer.plan import Plan
from gradual_transfer.plan.datasets import one_of
from gradual_transfer.stages import STAGE_VERSIONS

# The paper's settings (config.yaml in the working directory), with what --configfile and
# --config give merged over them, as `configfile:` would, but read by the library so that a YAML
# error names the file and the line. Data roots are checked before any job is planned, so a wrong
# path fails in seconds; `snakemake --lint` reads the rules, never the data.
try:
    config.update(merge(load_config(BASE_CONFIG), dict(config)))
    config.update(
        validate_config(config, check_data="--lint" not in sys.argv)
    )  # with the schema's defaults
except ConfigError as error:
    raise WorkflowError(str(error)) from None

PLAN = Plan(config)
PATHS = PLAN.paths
IMAGE_EXPERIMENTS = image_experiments(config)
# the studies of the user's own between utterance-classification speech tasks
SPEECH_STUDIES = speech_studies(config)

# What the design cannot conclude is said before a job runs (a warning: the run may be a first
# look); `check-config` says what every experiment can claim.
if workflow.is_main_process:
    for sentence in claims_warnings(config):
        print(f"Warning: {sentence}", file=sys.stderr)


# A run (not a dry run) takes the output folder: a second working directory whose config names
# the same outdir is refused instead of running the same jobs over this one's files.
onstart:
    try:
        hold_outdir(PATHS.out, f"the Snakemake run in {Path.cwd()}")
    except OutdirInUse as error:
        raise WorkflowError(str(error)) from None


wildcard_constraints:
    dataset=one_of(config["datasets"]),
    split="train|dev|test",
    fold=r"\d+",
