# gradual-transfer: layer-wise transferability between datasets and tasks by gradual transfer
# learning (Fayek, Cavedon & Wu). Logic lives in the gradual_transfer library; rules only wire
# files together. See README.md and docs/.
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/speech.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/screen.smk"


# Small steps (seconds, no GPU) run where Snakemake runs, never as cluster jobs.
localrules:
    all,
    hmm_model,
    hmm_realigned,
    aggregate_results,
    cost_table,
    figure_images,
    figure_speech,
    figure_study,
    transferability,
    figure_transferability,
    figure_curves,
    per_speaker_table,
    estimates_table,
    similarity_table,
    estimate_agreement,
    screen,


rule all:
    default_target: True
    input:
        PLAN.targets(),
