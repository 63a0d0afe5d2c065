"""The version of each stage of the method: part of every job's ``params``.

The workflow does not re-run jobs when code is edited (Snakemake's ``code`` trigger is off in
``profiles/default``): editing a thin adapter in ``scripts/``, a comment, or a `git checkout`
that rewrites files must not cost GPU-hours. A change that alters what a stage *computes* is
made visible by bumping its number here, in the same commit; Snakemake then re-runs that stage's
jobs ("params changed") and, through their newer outputs, everything downstream of them.

Bump when the stage's outputs change for the same config and inputs; do not bump for speed,
logging, refactoring or error messages.
"""

STAGE_VERSIONS = {
    "demo_corpus": 1,   # gradual_transfer/demo: the generated demo corpora
    "features": 1,      # data/frontend.py and each speech kind's reader: features, frame targets, statistics
    "images": 1,        # data/images.py: the prepared image splits and their statistics
    "training": 1,      # models/, train.py, transfer.py, experiment.py, speech.py: trained models
    "decoding": 3,      # hmm.py, decoding: the HMM, bigram, decoder and PER scoring (2: Kaldi's self-loop scale;
                        # 3: a sentence ends through its last phone's exit transition, as Kaldi's graphs)
    "alignment": 2,     # realign.py, hmm.align: realigned TIMIT targets (2: Kaldi's self-loop and transition scales)
    "tables": 5,        # tables.py, statistics.py, report.py: the tables (2: units of replication, exact tests,
                        # full precision, upper_groups, decode_at_grid_edge; 3: an HTML page beside each TSV;
                        # 4: onsets by fixed sequence, Hodges-Lehmann, direction by ranks, tests on the test
                        # split only, interval notes, the under-trained-primary diagnostic, each row's budget;
                        # 5: the pages open on key columns with frozen identifiers and every column described)
    "estimates": 2,     # screen.py, estimates.py, representations.py: transferability estimates from primaries
    #                     (2: LogME over the classes a sample holds, finite on dead units)
    "similarity": 1,    # screen.py, similarity.py, representations.py: CKA of each transfer to its start
    "figures": 4,       # figures.py: the figures (2: both families; Figure 3 per family, normalised by headroom;
                        # 3: l_c numbers with the groups' names, bands over units only from enough units,
                        # shared y per metric, Figure 3's fixed scale and upper triangle, curves per metric;
                        # 4: Figures 1-2 on the test split (validation supplementary), every unit a point,
                        # colour by kind and style by family, families apart unless their budgets match, l_c
                        # ticks as numbers; curves per family; Figure 3 over one depth span per experiment
                        # with the part beyond the control, one colourbar, one column wide; TrueType fonts)
}
