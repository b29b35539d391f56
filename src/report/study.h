// The mini study's report (results/mini-study/REPORT.md), written from the results database by
// `promoe report`: the protocol, the pilot (seed-to-seed spread, sampling noise, the smallest
// difference three seeds detect, the FD floor), every table beside the paper's figures (also as
// CSV), the claims' verdicts, loss and validation-loss curves, a sample grid per method, Fig. 1
// and the compute used. Everything in it is read from the database or the repository's files by
// this one command, so a reader can regenerate it.
#ifndef PROMOE_REPORT_STUDY_H
#define PROMOE_REPORT_STUDY_H

struct store;

enum { STUDY_TABLES_MAX = 16, STUDY_FIGURES_MAX = 8 };

// A figure of loss curves: a name and the run labels it draws.
struct study_figure {
    const char *name, *caption;
    const char *labels[16];
    int n_labels;
};

struct study_layout {
    const char *title;
    const char *sweep;              // the study sweep
    const char *protocol_path;      // shown verbatim
    const char *protocol_search;    // table spec of the search that chose the protocol (NULL: none)
    const char *tables[STUDY_TABLES_MAX];
    int n_tables;
    const char *claims_path;
    struct study_figure figures[STUDY_FIGURES_MAX];
    int n_figures;
    const char *pilot_labels[4];    // the rows whose seeds size the study
    int n_pilot_labels;
    const char *out_dir;            // REPORT.md, tables/, figures/, samples/
    const char *ckpt_dir;           // where the runs' sample grids and analyses are
    const char *featnet_dir;        // the feature network beside the database
    const char *data_dir;           // Fashion-MNIST, for the FD floor
    int eval_n;                     // samples per evaluation, for the FD floor
};

// The layout of the mini study (sweeps/mini/study.yaml and its table specs), with the database's
// folder for the feature network and out_dir for the files.
void study_layout_mini(struct study_layout *l, const char *db_path, const char *out_dir);

int study_report(struct store *db, const struct study_layout *l);

#endif
