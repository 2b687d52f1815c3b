"""The ps04_gradient_clipping matrix: each clipping bug students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps04_gradient_clipping"

NORM, CLIP, VALUE, STEP = "global_grad_norm", "clip_grad_norm", "clip_grad_value", "train_step_clipped"
GRADS = "    grads = [p.grad.detach() for p in parameters if p.grad is not None]\n"
EMPTY = "    if not grads:\n        return 0.0\n"
INF_BRANCH = ("    if norm_type == math.inf:\n"
              "        return max(g.abs().max().item() for g in grads)\n")
TOTAL = "    total = sum((g.abs() ** norm_type).sum() for g in grads)\n"
RETURN_NORM = "    return total.item() ** (1.0 / norm_type)\n"
MATERIALISE = "    parameters = [p for p in parameters if p.grad is not None]\n"
FACTOR = "    factor = max_norm / (total_norm + 1e-6)\n"
SCALE = ("    if factor < 1:\n"
         "        for p in parameters:\n"
         "            p.grad.detach().mul_(factor)\n")
CLAMP = ("        if p.grad is not None:\n"
         "            p.grad.detach().clamp_(-clip_value, clip_value)\n")
ZERO_GRAD = "    optimizer.zero_grad()\n"
BACKWARD = "    loss.backward()\n"
CLIP_CALL = "    norm = clip_grad_norm(model.parameters(), max_norm)\n"
STEP_CALL = "    optimizer.step()\n"
STEP_RETURN = "    return loss.item(), norm\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    # Task 1: global_grad_norm
    Mutant("norm_generator_read_twice", "global_grad_norm looks through the parameters twice: a generator is "
           "half used up by the first look",
           edits={NORM: [(GRADS, "    if all(p.grad is None for p in parameters):\n        return 0.0\n" + GRADS)]},
           fails={"test_global_grad_norm": "with a generator", "audit_global_grad_norm": "iterated only once"},
           breaks=("R1.1",)),
    Mutant("norm_no_skip_none", "global_grad_norm reads .grad of every parameter, None included",
           edits={NORM: [(GRADS, "    grads = [p.grad.detach() for p in parameters]\n")]},
           fails={"test_global_grad_norm": "NoneType", "audit_global_grad_norm": "skip it"},
           breaks=("R1.2",)),
    Mutant("norm_empty_crashes", "no case for parameters none of which has a gradient: sum([]).item() fails",
           edits={NORM: [(EMPTY, "")]},
           fails={"audit_global_grad_norm": "return 0.0", "audit_clip_under_bound": "raised AttributeError",
                  "audit_clip_returns_pre_clip_norm": "raised AttributeError"},
           breaks=("R1.3",)),
    Mutant("norm_default_l1", "global_grad_norm's norm_type defaults to 1.0",
           edits={NORM: [("def global_grad_norm(parameters, norm_type=2.0):",
                          "def global_grad_norm(parameters, norm_type=1.0):")]},
           fails={"test_global_grad_norm": "default norm_type=2.0", "audit_global_grad_norm": "default norm_type=2.0"},
           breaks=("R1.4",)),
    Mutant("sum_of_norms", "global norm as the sum of the per-parameter norms",
           edits={NORM: [(TOTAL + RETURN_NORM,
                          "    return sum(((g.abs() ** norm_type).sum() ** (1.0 / norm_type)).item() for g in grads)\n")]},
           fails={"test_global_grad_norm": "gave 17", "audit_global_grad_norm": "added up the per-parameter norms",
                  "test_clip_grad_norm": "returned 17", "audit_clip_grad_norm": "differ from",
                  "audit_clip_returns_pre_clip_norm": "before clipping was",
                  "audit_clip_under_bound": "changed them", "audit_clipped_step_gradient": "was not this batch's",
                  "test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_step_returns": "before clipping was"},
           breaks=("R1.5",)),
    Mutant("norm_ignores_norm_type", "global_grad_norm always computes the 2-norm (inf aside)",
           edits={NORM: [(TOTAL + RETURN_NORM, "    total = sum((g ** 2).sum() for g in grads)\n"
                                               "    return total.item() ** 0.5\n")]},
           fails={"test_global_grad_norm": "norm_type=1.0", "audit_global_grad_norm": "that is the 2-norm",
                  "audit_clip_grad_norm": "2-norm", "audit_clip_returns_pre_clip_norm": "before clipping was"},
           breaks=("R1.6",)),
    Mutant("inf_norm_as_p_norm", "no case for norm_type=inf: sum(|g|**inf)**(1/inf) gives 1.0",
           edits={NORM: [(INF_BRANCH, "")]},
           fails={"test_global_grad_norm": "norm_type=inf", "audit_global_grad_norm": "handle norm_type == float('inf')",
                  "audit_clip_inf_norm": "handle norm_type == float('inf')"},
           breaks=("R1.7",)),
    Mutant("norm_returns_tensor", "global_grad_norm returns a 0-d tensor, not a float",
           edits={NORM: [(RETURN_NORM, "    return total ** (1.0 / norm_type)\n")]},
           fails={"test_global_grad_norm": "Python float", "audit_global_grad_norm": "torch.Tensor",
                  "test_clip_grad_norm": "Python float", "audit_clip_returns_pre_clip_norm": "torch.Tensor",
                  "test_train_step_clipped": "Python floats", "audit_step_returns": "torch.Tensor"},
           breaks=("R1.8",)),
    Mutant("norm_changes_grads", "the inf-norm takes abs_() in place: the gradients lose their signs",
           edits={NORM: [("g.abs().max()", "g.abs_().max()")]},
           fails={"audit_global_grad_norm": "changed the gradients", "audit_clip_inf_norm": "differ from"},
           breaks=("R1.9",)),
    # Task 2: clip_grad_norm
    Mutant("generator_used_twice", "parameters not materialised: a generator is used up by the norm",
           edits={CLIP: [(MATERIALISE, ""), ("        for p in parameters:\n",
                                             "        for p in parameters:\n            if p.grad is None:\n"
                                             "                continue\n")]},
           fails={"audit_clip_grad_norm": "Start with parameters = list(parameters)",
                  "audit_clip_inf_norm": "Start with parameters = list(parameters)",
                  "test_train_step_clipped": "above max_norm",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "nothing clipped it",
                  "audit_clipped_training_converges": "exploded"},
           breaks=("R2.1",)),
    Mutant("clip_ignores_norm_type", "clip_grad_norm measures the norm without passing norm_type on",
           edits={CLIP: [("global_grad_norm(parameters, norm_type)", "global_grad_norm(parameters)")]},
           fails={"audit_clip_grad_norm": "measure the norm with the norm_type you are given",
                  "audit_clip_returns_pre_clip_norm": "before clipping was",
                  "audit_clip_inf_norm": "inf-norm of the gradients"},
           breaks=("R2.2",)),
    Mutant("clip_no_default", "clip_grad_norm's norm_type has no default: a call without it fails",
           edits={CLIP: [("def clip_grad_norm(parameters, max_norm, norm_type=2.0):",
                          "def clip_grad_norm(parameters, max_norm, norm_type):")]},
           fails={"test_clip_grad_norm": "norm_type", "audit_clip_grad_norm": "default, 2.0",
                  "audit_clip_returns_pre_clip_norm": "default, 2.0", "audit_clip_under_bound": "default, 2.0",
                  "test_train_step_clipped": "norm_type", "audit_norm_at_step": "norm_type",
                  "audit_clipped_step_gradient": "norm_type", "audit_step_returns": "norm_type",
                  "audit_clipped_training_converges": "norm_type"},
           breaks=("R2.3",)),
    Mutant("clip_no_skip_none", "clip_grad_norm scales .grad of every parameter, None included",
           edits={CLIP: [(MATERIALISE, "    parameters = list(parameters)\n")]},
           fails={"test_clip_grad_norm": "NoneType", "audit_clip_grad_norm": "skip it", "audit_clip_inf_norm": "skip it",
                  "audit_clip_returns_pre_clip_norm": "skip it"},
           breaks=("R2.4",)),
    Mutant("per_parameter_clipping", "each parameter clipped by its own norm instead of the global norm",
           edits={CLIP: [(FACTOR + SCALE,
                          "    for p in parameters:\n"
                          "        factor = max_norm / (global_grad_norm([p], norm_type) + 1e-6)\n"
                          "        if factor < 1:\n"
                          "            p.grad.detach().mul_(factor)\n")]},
           fails={"test_clip_grad_norm": "same factor", "audit_clip_grad_norm": "its own norm",
                  "audit_clip_inf_norm": "its own norm",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "its own norm",
                  "test_train_step_clipped": "above max_norm"},
           breaks=("R2.5",), headline=True),
    Mutant("clip_not_in_place", "clip_grad_norm multiplies out of place (mul, not mul_): nothing changes",
           edits={CLIP: [("p.grad.detach().mul_(factor)", "p.grad.detach().mul(factor)")]},
           fails={"test_clip_grad_norm": "clip in place", "audit_clip_grad_norm": "in place",
                  "audit_clip_inf_norm": "in place", "test_train_step_clipped": "above max_norm",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "nothing clipped it",
                  "audit_clipped_training_converges": "exploded"},
           breaks=("R2.6",)),
    Mutant("scales_up_under_bound", "no min(1, ...): gradients under the bound are scaled up to max_norm",
           edits={CLIP: [(SCALE, "    for p in parameters:\n        p.grad.detach().mul_(factor)\n")]},
           fails={"audit_clip_under_bound": "scaling them up", "audit_clip_inf_norm": "already under max_norm"},
           breaks=("R2.7",)),
    Mutant("clip_no_epsilon", "factor max_norm / norm without the 1e-6: a zero norm divides by zero",
           edits={CLIP: [(FACTOR, "    factor = max_norm / total_norm\n")]},
           fails={"audit_clip_under_bound": "ZeroDivisionError", "audit_clip_returns_pre_clip_norm": "ZeroDivisionError"},
           breaks=("R2.8",)),
    Mutant("returns_post_clip_norm", "clip_grad_norm returns the norm after clipping",
           edits={CLIP: [("    return total_norm\n", "    return global_grad_norm(parameters, norm_type)\n")]},
           fails={"test_clip_grad_norm": "return the norm before clipping",
                  "audit_clip_returns_pre_clip_norm": "norm after clipping",
                  "audit_clip_inf_norm": "inf-norm of the gradients",
                  "test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_step_returns": "norm after clipping"},
           breaks=("R2.9",)),
    Mutant("clip_returns_tensor", "clip_grad_norm returns the norm as a tensor, as torch's does",
           edits={CLIP: [("    return total_norm\n", "    return torch.tensor(total_norm)\n")]},
           fails={"test_clip_grad_norm": "Python float", "audit_clip_returns_pre_clip_norm": "torch.Tensor",
                  "audit_clip_inf_norm": "torch.Tensor", "test_train_step_clipped": "Python floats",
                  "audit_step_returns": "torch.Tensor"},
           breaks=("R2.10",)),
    # Task 3: clip_grad_value
    Mutant("value_clamps_positive_side_only", "clip_grad_value clamps only from above",
           edits={VALUE: [("clamp_(-clip_value, clip_value)", "clamp_(max=clip_value)")]},
           fails={"test_clip_grad_value": "clamp both sides", "audit_clip_grad_value": "only the positive side"},
           breaks=("R3.1",)),
    Mutant("value_not_in_place", "clip_grad_value clamps out of place (clamp, not clamp_): nothing changes",
           edits={VALUE: [("clamp_(-clip_value, clip_value)", "clamp(-clip_value, clip_value)")]},
           fails={"test_clip_grad_value": "clamp in place", "audit_clip_grad_value": "in place"},
           breaks=("R3.2",)),
    Mutant("value_no_skip_none", "clip_grad_value clamps .grad of every parameter, None included",
           edits={VALUE: [(CLAMP, "        p.grad.detach().clamp_(-clip_value, clip_value)\n")]},
           fails={"test_clip_grad_value": "NoneType", "audit_clip_grad_value": "skip it"},
           breaks=("R3.3",)),
    Mutant("value_two_loops", "clip_grad_value clamps the top in one loop and the bottom in another: a "
           "generator is used up by the first",
           edits={VALUE: [("    for p in parameters:\n" + CLAMP,
                           "    for p in parameters:\n"
                           "        if p.grad is not None:\n"
                           "            p.grad.detach().clamp_(max=clip_value)\n"
                           "    for p in parameters:\n"
                           "        if p.grad is not None:\n"
                           "            p.grad.detach().clamp_(min=-clip_value)\n")]},
           fails={"audit_clip_grad_value": "iterated only once"},
           breaks=("R3.4",)),
    # Task 4: train_step_clipped
    Mutant("no_zero_grad", "train_step_clipped never clears the gradients: the last step's are added in",
           edits={STEP: [(ZERO_GRAD, "")]},
           fails={"audit_clipped_step_gradient": "optimizer.zero_grad() before loss.backward()",
                  "audit_step_returns": "optimizer.zero_grad() before loss.backward()"},
           breaks=("R4.1",)),
    Mutant("clip_before_backward", "clip_grad_norm called before loss.backward(), when there is no gradient",
           edits={STEP: [(BACKWARD + CLIP_CALL, CLIP_CALL + BACKWARD)]},
           fails={"test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_norm_at_step": "above max_norm", "audit_clipped_step_gradient": "before loss.backward()",
                  "audit_step_returns": "no gradient yet", "audit_clipped_training_converges": "exploded"},
           breaks=("R4.2",)),
    Mutant("clip_after_step", "clip_grad_norm called after optimizer.step()",
           edits={STEP: [(CLIP_CALL + STEP_CALL, STEP_CALL + CLIP_CALL)]},
           fails={"test_train_step_clipped": "above max_norm", "audit_norm_at_step": "above max_norm",
                  "audit_clipped_step_gradient": "only after the step",
                  "audit_clipped_training_converges": "exploded"},
           breaks=("R4.3",)),
    Mutant("step_clips_each_parameter", "train_step_clipped clips each parameter's gradient on its own",
           edits={STEP: [(CLIP_CALL, "    norm = global_grad_norm(model.parameters())\n"
                                     "    for p in model.parameters():\n"
                                     "        clip_grad_norm([p], max_norm)\n")]},
           fails={"test_train_step_clipped": "above max_norm", "audit_norm_at_step": "above max_norm",
                  "audit_clipped_step_gradient": "its own norm"},
           breaks=("R4.4",), headline=True),
    Mutant("no_step", "train_step_clipped never calls optimizer.step()",
           edits={STEP: [(STEP_CALL, "")]},
           fails={"test_train_step_clipped": "did not move", "audit_norm_at_step": "0 times",
                  "audit_clipped_step_gradient": "0 times", "audit_clipped_training_converges": "not below half"},
           breaks=("R4.5",)),
    Mutant("step_returns_norm_first", "train_step_clipped returns (norm, loss)",
           edits={STEP: [(STEP_RETURN, "    return norm, loss.item()\n")]},
           fails={"test_train_step_clipped": "not the batch's loss", "audit_step_returns": "in that order"},
           breaks=("R4.6",)),
    Mutant("step_loss_after_update", "train_step_clipped returns the loss recomputed after the step",
           edits={STEP: [(STEP_RETURN, "    return loss_fn(model(xb), yb).item(), norm\n")]},
           fails={"test_train_step_clipped": "not the batch's loss before the update",
                  "audit_step_returns": "before the update", "audit_clipped_training_converges": "loss_fn was called"},
           breaks=("R4.7",)),
    Mutant("step_returns_post_clip_norm", "train_step_clipped returns the norm measured after clipping",
           edits={STEP: [(STEP_RETURN, "    return loss.item(), global_grad_norm(model.parameters())\n")]},
           fails={"test_train_step_clipped": "not the gradient norm before clipping",
                  "audit_step_returns": "norm after clipping"},
           breaks=("R4.8",)),
    Mutant("step_returns_loss_tensor", "train_step_clipped returns the loss tensor, not loss.item()",
           edits={STEP: [(STEP_RETURN, "    return loss, norm\n")]},
           fails={"test_train_step_clipped": "Python floats", "audit_step_returns": "torch.Tensor"},
           breaks=("R4.9",)),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_vector_norm_of_norms", "torch.linalg.vector_norm of the stacked per-parameter norms (inf included)",
           edits={NORM: [(INF_BRANCH + TOTAL + RETURN_NORM,
                          "    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])\n"
                          "    return torch.linalg.vector_norm(norms, norm_type).item()\n")]}),
    Mutant("alt_flat_cat_min_factor", "one flat vector via torch.cat; factor min(1, max_norm / norm), no 1e-6 "
           "but a guard for a zero norm, always multiplied under no_grad",
           edits={NORM: [(GRADS, "    grads = [p.grad.detach().reshape(-1) for p in parameters if p.grad is not None]\n"),
                         (INF_BRANCH + TOTAL + RETURN_NORM,
                          "    flat = torch.cat(grads)\n"
                          "    if math.isinf(norm_type):\n"
                          "        return float(flat.abs().max())\n"
                          "    return float(flat.abs().pow(norm_type).sum().pow(1.0 / norm_type))\n")],
                  CLIP: [(FACTOR + SCALE,
                          "    factor = min(1.0, max_norm / total_norm) if total_norm > 0 else 1.0\n"
                          "    with torch.no_grad():\n"
                          "        for p in parameters:\n"
                          "            p.grad *= factor\n")]}),
    Mutant("alt_value_rebinds_grad", "clip_grad_value assigns a clamped copy to p.grad",
           edits={VALUE: [("p.grad.detach().clamp_(-clip_value, clip_value)",
                           "p.grad = p.grad.clamp(-clip_value, clip_value)")]}),
    Mutant("alt_step_uses_torch_clip", "train_step_clipped calls torch.nn.utils.clip_grad_norm_ and .item()",
           edits={STEP: [(CLIP_CALL, "    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()\n")]}),
    Mutant("alt_numpy_floats_namedtuple", "numpy.float64 and a float subclass for the norms, a namedtuple with a "
           "numpy.float64 loss, a while loop over an iterator, model.zero_grad(set_to_none=False)",
           edits={NORM: [(GRADS + EMPTY + INF_BRANCH + TOTAL + RETURN_NORM,
                          "    import numpy as np\n"
                          "    it = iter(parameters)\n"
                          "    total, biggest, seen = 0.0, 0.0, False\n"
                          "    while True:\n"
                          "        p = next(it, None)\n"
                          "        if p is None:\n"
                          "            break\n"
                          "        if p.grad is None:\n"
                          "            continue\n"
                          "        seen = True\n"
                          "        a = p.grad.detach().abs().double()\n"
                          "        if math.isinf(norm_type):\n"
                          "            biggest = max(biggest, a.max().item())\n"
                          "        else:\n"
                          "            total += a.pow(norm_type).sum().item()\n"
                          "    if not seen:\n"
                          "        return np.float64(0.0)\n"
                          "    return np.float64(biggest if math.isinf(norm_type) else total ** (1.0 / norm_type))\n")],
                  CLIP: [("def clip_grad_norm(", "class Norm(float):\n"
                                                 "    \"\"\"A float that shows itself as a norm.\"\"\"\n"
                                                 "    def __repr__(self):\n"
                                                 "        return f\"Norm({float(self):.4g})\"\n\n\n"
                                                 "def clip_grad_norm("),
                         ("    return total_norm\n", "    return Norm(total_norm)\n")],
                  STEP: [("def train_step_clipped(", "from collections import namedtuple\n"
                                                     "StepResult = namedtuple(\"StepResult\", [\"loss\", \"norm\"])\n\n\n"
                                                     "def train_step_clipped("),
                         (ZERO_GRAD, "    model.zero_grad(set_to_none=False)\n"),
                         (STEP_RETURN, "    import numpy as np\n"
                                       "    return StepResult(np.float64(loss.detach().item()), norm)\n")]}),
    Mutant("alt_noisy", "correct, and noisy: logging to stderr, prints to stdout and stderr, a warning, a terminal "
           "tqdm bar nested in a tqdm.auto bar, every step",
           edits={CLIP: [("    return total_norm\n",
                          "    import sys\n"
                          "    print(f\"clip_grad_norm: norm {total_norm:.4g}\", file=sys.stderr)\n"
                          "    return total_norm\n")],
                  STEP: [("def train_step_clipped(", "import logging\n"
                                                     "import sys\n"
                                                     "import warnings\n"
                                                     "from tqdm import tqdm as terminal_tqdm\n"
                                                     "from tqdm.auto import tqdm as auto_tqdm\n\n"
                                                     "logging.basicConfig()\n"
                                                     "logger = logging.getLogger(\"ps04.student\")\n"
                                                     "logger.setLevel(logging.INFO)\n\n\n"
                                                     "def train_step_clipped("),
                         (ZERO_GRAD + "    loss = loss_fn(model(xb), yb)\n" + BACKWARD + CLIP_CALL + STEP_CALL,
                          "    for _ in auto_tqdm(range(1), desc=\"step\", leave=False):\n"
                          "        optimizer.zero_grad()\n"
                          "        loss = loss_fn(model(xb), yb)\n"
                          "        loss.backward()\n"
                          "        for _ in terminal_tqdm(range(1), desc=\"clip\", leave=False):\n"
                          "            norm = clip_grad_norm(model.parameters(), max_norm)\n"
                          "        optimizer.step()\n"
                          "    logger.info(\"loss %.4g, norm %.4g\", loss.item(), norm)\n"
                          "    logger.warning(\"step done\")\n"
                          "    print(f\"loss {loss.item():.4g}\", file=sys.stderr)\n"
                          "    print(f\"norm {norm:.4g}\")\n"
                          "    if norm > max_norm:\n"
                          "        warnings.warn(f\"gradient norm {norm:.3g} clipped to {max_norm}\")\n")]}),
]
