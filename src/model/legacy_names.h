// Tensor names of checkpoints written before the baselines took the names of their official
// model classes (ali-vilab/ProMoE models_TCDiT.py, models_ECDiT.py, models_DiffMoE.py):
//   blocks.N.mlp.experts.E.fc1.* / .fc2.*   were  blocks.N.mlp.experts.E.up_proj.* / .down_proj.*
//   blocks.N.mlp.gate_weight                was   blocks.N.mlp.gate.weight      (EC-DiT, DiffMoE)
//   blocks.N.mlp.expert_threshold           was   blocks.N.mlp.capacity_thresholds   (DiffMoE)
//   blocks.N.mlp.ema_decay                  did not exist (DiffMoE; a constant buffer)
// Loaders ask for the current name first and fall back to these, so such checkpoints still load.
#ifndef PROMOE_LEGACY_NAMES_H
#define PROMOE_LEGACY_NAMES_H

#include <stddef.h>

// The name that the tensor `name` (no group prefix) had before the rename, into out: 1 if it had
// another one, 0 if not.
int legacy_tensor_name(const char *name, char *out, size_t size);

// For a tensor added by the rename (DiffMoE's ema_decay): 1 and, into marker, the old-layout
// tensor whose presence shows that the file predates it (its layer's capacity_thresholds); else 0.
int legacy_added_marker(const char *name, char *marker, size_t size);

#endif
