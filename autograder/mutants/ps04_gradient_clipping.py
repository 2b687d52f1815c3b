"""The ps04_gradient_clipping matrix: each clipping bug students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps04_gradient_clipping"

NORM, CLIP, VALUE, STEP = "global_grad_norm", "clip_grad_norm", "clip_grad_value", "train_step_clipped"
INF_BRANCH = ("    if norm_type == math.inf:\n"
              "        return max(g.abs().max().item() for g in grads)\n")
MATERIALISE = "    parameters = [p for p in parameters if p.grad is not None]\n"
SCALE = ("    if factor < 1:\n"
         "        for p in parameters:\n"
         "            p.grad.detach().mul_(factor)\n")
BACKWARD = "    loss.backward()\n"
CLIP_CALL = "    norm = clip_grad_norm(model.parameters(), max_norm)\n"
STEP_CALL = "    optimizer.step()\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("inf_norm_as_p_norm", "no case for norm_type=inf: sum(|g|**inf)**(1/inf) gives 1.0",
           edits={NORM: [(INF_BRANCH, "")]},
           fails={"test_global_grad_norm": "norm_type=inf", "audit_global_grad_norm": "handle norm_type == float('inf')",
                  "audit_clip_inf_norm": "handle norm_type == float('inf')"}),
    Mutant("sum_of_norms", "global norm as the sum of the per-parameter norms",
           edits={NORM: [("    total = sum((g.abs() ** norm_type).sum() for g in grads)\n"
                          "    return total.item() ** (1.0 / norm_type)\n",
                          "    return sum(((g.abs() ** norm_type).sum() ** (1.0 / norm_type)).item() for g in grads)\n")]},
           fails={"test_global_grad_norm": "gave 17", "audit_global_grad_norm": "added up the per-parameter norms",
                  "test_clip_grad_norm": "returned 17", "audit_clip_grad_norm": "differ from",
                  "audit_clip_returns_pre_clip_norm": "before clipping was",
                  "audit_clip_under_bound": "changed them", "audit_clipped_step_gradient": "was not this batch's",
                  "test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_step_returns": "before clipping was"}),
    Mutant("per_parameter_clipping", "each parameter clipped by its own norm instead of the global norm",
           edits={CLIP: [("    factor = max_norm / (total_norm + 1e-6)\n" + SCALE,
                          "    for p in parameters:\n"
                          "        factor = max_norm / (global_grad_norm([p], norm_type) + 1e-6)\n"
                          "        if factor < 1:\n"
                          "            p.grad.detach().mul_(factor)\n")]},
           fails={"test_clip_grad_norm": "same factor", "audit_clip_grad_norm": "its own norm",
                  "audit_clip_inf_norm": "its own norm",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "its own norm",
                  "test_train_step_clipped": "above max_norm"}),
    Mutant("scales_up_under_bound", "no min(1, ...): gradients under the bound are scaled up to max_norm",
           edits={CLIP: [(SCALE, "    for p in parameters:\n        p.grad.detach().mul_(factor)\n")]},
           fails={"audit_clip_under_bound": "scaling them up", "audit_clip_inf_norm": "already under max_norm"}),
    Mutant("returns_post_clip_norm", "clip_grad_norm returns the norm after clipping",
           edits={CLIP: [("    return total_norm\n", "    return global_grad_norm(parameters, norm_type)\n")]},
           fails={"test_clip_grad_norm": "return the norm before clipping",
                  "audit_clip_returns_pre_clip_norm": "norm after clipping",
                  "audit_clip_inf_norm": "inf-norm of the gradients",
                  "test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_step_returns": "norm after clipping"}),
    Mutant("generator_used_twice", "parameters not materialised: a generator is used up by the norm",
           edits={CLIP: [(MATERIALISE, ""), ("        for p in parameters:\n",
                                             "        for p in parameters:\n            if p.grad is None:\n"
                                             "                continue\n")]},
           fails={"audit_clip_grad_norm": "Start with parameters = list(parameters)",
                  "audit_clip_inf_norm": "Start with parameters = list(parameters)",
                  "test_train_step_clipped": "above max_norm",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "nothing clipped it",
                  "audit_clipped_training_converges": "exploded"}),
    Mutant("value_clamps_positive_side_only", "clip_grad_value clamps only from above",
           edits={VALUE: [("clamp_(-clip_value, clip_value)", "clamp_(max=clip_value)")]},
           fails={"test_clip_grad_value": "clamp both sides", "audit_clip_grad_value": "only the positive side"}),
    Mutant("clip_after_step", "clip_grad_norm called after optimizer.step()",
           edits={STEP: [(CLIP_CALL + STEP_CALL, STEP_CALL + CLIP_CALL)]},
           fails={"test_train_step_clipped": "above max_norm", "audit_norm_at_step": "above max_norm",
                  "audit_clipped_step_gradient": "only after the step",
                  "audit_clipped_training_converges": "exploded"}),
    Mutant("clip_before_backward", "clip_grad_norm called before loss.backward(), when there is no gradient",
           edits={STEP: [(BACKWARD + CLIP_CALL, CLIP_CALL + BACKWARD)]},
           fails={"test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "before loss.backward()",
                  "audit_step_returns": "no gradient yet", "audit_clipped_training_converges": "exploded"}),
    Mutant("step_returns_loss_tensor", "train_step_clipped returns the loss tensor, not loss.item()",
           edits={STEP: [("    return loss.item(), norm\n", "    return loss, norm\n")]},
           fails={"test_train_step_clipped": "Python floats", "audit_step_returns": "torch.Tensor"}),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_vector_norm_of_norms", "torch.linalg.vector_norm of the stacked per-parameter norms (inf included)",
           edits={NORM: [(INF_BRANCH + "    total = sum((g.abs() ** norm_type).sum() for g in grads)\n"
                          "    return total.item() ** (1.0 / norm_type)\n",
                          "    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])\n"
                          "    return torch.linalg.vector_norm(norms, norm_type).item()\n")]}),
    Mutant("alt_flat_cat_min_factor", "one flat vector via torch.cat; factor min(1, max_norm / norm), no 1e-6, "
           "always multiplied under no_grad",
           edits={NORM: [("    grads = [p.grad.detach() for p in parameters if p.grad is not None]\n",
                          "    grads = [p.grad.detach().reshape(-1) for p in parameters if p.grad is not None]\n"),
                         (INF_BRANCH + "    total = sum((g.abs() ** norm_type).sum() for g in grads)\n"
                          "    return total.item() ** (1.0 / norm_type)\n",
                          "    flat = torch.cat(grads)\n"
                          "    if math.isinf(norm_type):\n"
                          "        return float(flat.abs().max())\n"
                          "    return float(flat.abs().pow(norm_type).sum().pow(1.0 / norm_type))\n")],
                  CLIP: [("    factor = max_norm / (total_norm + 1e-6)\n" + SCALE,
                          "    factor = min(1.0, max_norm / total_norm) if total_norm > 0 else 1.0\n"
                          "    with torch.no_grad():\n"
                          "        for p in parameters:\n"
                          "            p.grad *= factor\n")]}),
    Mutant("alt_value_rebinds_grad", "clip_grad_value assigns a clamped copy to p.grad",
           edits={VALUE: [("p.grad.detach().clamp_(-clip_value, clip_value)",
                           "p.grad = p.grad.clamp(-clip_value, clip_value)")]}),
    Mutant("alt_step_uses_torch_clip", "train_step_clipped calls torch.nn.utils.clip_grad_norm_ and .item()",
           edits={STEP: [(CLIP_CALL, "    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()\n")]}),
]
