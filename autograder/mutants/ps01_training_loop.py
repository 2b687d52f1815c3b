"""The ps01_training_loop matrix: each bug students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, audit_cells, grade_cells

NAME = "ps01_training_loop"

ZERO_GRAD = "    optimizer.zero_grad()\n"
LOSS = "    loss = loss_fn(model(xb), yb)\n"
BACKWARD = "    loss.backward()\n"
STEP = "    optimizer.step()\n"
RETURN_LOSS = "    return loss.item()\n"
EPOCH_BODY = ("    total, count = 0.0, 0\n"
              "    for xb, yb in loader:\n"
              "        total += train_step(model, loss_fn, optimizer, xb, yb) * len(yb)\n"
              "        count += len(yb)\n"
              "    return total / count\n")
FIT_BODY = "    return [train_epoch(model, loader, loss_fn, optimizer) for _ in range(epochs)]\n"
FLOW = "{n: None if p.grad is None else p.grad.norm().item() for n, p in model.named_parameters()}"
CHANGE = "{n: (after[n] - before[n]).norm().item() for n in before}"
DECREASE = "return (history[0] - history[-1]) / history[0]"
XOR = "nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    # Task 1: train_step
    Mutant("no_zero_grad", "optimizer.zero_grad() left out",
           edits={"train_step": [(ZERO_GRAD, "")]}, breaks=("R1.1",), headline=True,
           fails={"test_train_step": "added up across steps", "audit_zero_grad": "accumulate across steps",
                  "audit_convergence": "correct training reaches"}),
    Mutant("zero_grad_after_backward", "optimizer.zero_grad() between backward() and step()",
           edits={"train_step": [(ZERO_GRAD, ""), (BACKWARD, BACKWARD + ZERO_GRAD)]}, breaks=("R1.1",),
           fails={"test_train_step": "did not change", "audit_zero_grad": "ran after loss.backward()",
                  "audit_every_parameter_learns": "had no gradient",
                  "test_train_epoch": "should lower the loss", "test_fit": "should fall",
                  "audit_convergence": "correct training reaches", "test_xor_milestone": "needs 95%"}),
    Mutant("loss_fn_ignored", "train_step computes cross-entropy itself instead of calling the loss_fn passed in",
           edits={"train_step": [(LOSS, "    loss = nn.functional.cross_entropy(model(xb), yb)\n")]}, breaks=("R1.2",),
           fails={"audit_every_parameter_learns": "loss returned by loss_fn",
                  "test_train_epoch": "batches of sizes []", "audit_one_step_per_batch": "batches of sizes []",
                  "audit_epoch_mean": "computed 0 losses", "audit_fit_history": "computed 0 batch losses",
                  "test_xor_milestone": "division by zero"}),
    Mutant("backward_twice", "loss.backward() called twice in one step",
           edits={"train_step": [(BACKWARD, "    loss.backward(retain_graph=True)\n" + BACKWARD)]}, breaks=("R1.3",),
           fails={"test_train_step": "applied twice in one call", "audit_zero_grad": "twice"}),
    Mutant("no_step", "optimizer.step() left out",
           edits={"train_step": [(STEP, "")]}, breaks=("R1.4",),
           fails={"test_train_step": "did not change", "audit_every_parameter_learns": "never called optimizer.step()",
                  "audit_one_step_per_batch": "0 time(s)", "test_train_epoch": "should lower the loss",
                  "test_fit": "should fall", "audit_convergence": "correct training reaches", "test_xor_milestone": "needs 95%"}),
    Mutant("step_twice", "optimizer.step() called twice in one step",
           edits={"train_step": [(STEP, STEP + STEP)]}, breaks=("R1.4",),
           fails={"test_train_step": "applied twice in one call", "audit_every_parameter_learns": "2 times",
                  "audit_one_step_per_batch": "step once per batch"}),
    Mutant("step_before_backward", "optimizer.step() called before loss.backward()",
           edits={"train_step": [(STEP, ""), (BACKWARD, STEP + BACKWARD)]}, breaks=("R1.5",),
           fails={"test_train_step": "did not change", "audit_every_parameter_learns": "before loss.backward()",
                  "test_train_epoch": "should lower the loss", "test_fit": "should fall",
                  "audit_convergence": "correct training reaches", "test_xor_milestone": "needs 95%"}),
    Mutant("loss_as_tensor", "train_step returns the loss tensor, not loss.item()",
           edits={"train_step": [("return loss.item()", "return loss")]}, breaks=("R1.6",),
           fails={"test_train_step": "Python float", "audit_step_loss": "torch.Tensor",
                  "test_train_epoch": "must return a float", "audit_epoch_mean": "torch.Tensor",
                  "test_fit": "must be a float", "audit_fit_history": "torch.Tensor",
                  "test_xor_milestone": "requires grad"}),
    Mutant("loss_after_update", "train_step returns the loss recomputed after optimizer.step()",
           edits={"train_step": [(RETURN_LOSS, "    with torch.no_grad():\n        return loss_fn(model(xb), yb).item()\n")]},
           breaks=("R1.7",),
           fails={"test_train_step": "the loss before the update", "audit_step_loss": "before the update",
                  "test_train_epoch": "batches of sizes", "audit_one_step_per_batch": "batches of sizes",
                  "audit_epoch_mean": "losses for a loader", "audit_fit_history": "batch losses over"}),
    Mutant("losses_kept_alive", "train_step keeps every loss tensor in a global list (a memory leak)",
           edits={"train_step": [("def train_step(", "all_losses = []\n\n\ndef train_step("),
                                 (RETURN_LOSS, "    all_losses.append(loss)\n" + RETURN_LOSS)]},
           breaks=("R1.8",), fails={"audit_step_loss": "still alive"}),
    # Task 2: train_epoch
    Mutant("epoch_skips_short_batch", "train_epoch runs len(dataset) // batch_size batches: the short last one is lost",
           edits={"train_epoch": [("    for xb, yb in loader:\n",
                                   "    batches = iter(loader)\n"
                                   "    for _ in range(len(loader.dataset) // loader.batch_size):\n"
                                   "        xb, yb = next(batches)\n")]},
           breaks=("R2.1",),
           fails={"test_train_epoch": "the short last one", "audit_one_step_per_batch": "exactly once",
                  "audit_epoch_mean": "losses for a loader", "audit_fit_history": "batch losses over"}),
    Mutant("unweighted_epoch_mean", "train_epoch averages batch losses, ignoring batch sizes",
           edits={"train_epoch": [("* len(yb)", ""), ("count += len(yb)", "count += 1")]},
           breaks=("R2.2",), headline=True,
           fails={"test_train_epoch": "plain average", "audit_epoch_mean": "plain average",
                  "audit_fit_history": "sample-weighted"}),
    Mutant("epoch_returns_tensor", "train_epoch sums detached loss tensors and returns a 0-d tensor",
           edits={"train_epoch": [(EPOCH_BODY,
                                   "    total, count = 0.0, 0\n"
                                   "    for xb, yb in loader:\n"
                                   "        optimizer.zero_grad()\n"
                                   "        loss = loss_fn(model(xb), yb)\n"
                                   "        loss.backward()\n"
                                   "        optimizer.step()\n"
                                   "        total += loss.detach() * len(yb)\n"
                                   "        count += len(yb)\n"
                                   "    return total / count\n")]},
           breaks=("R2.3",),
           fails={"test_train_epoch": "must return a float", "audit_epoch_mean": "torch.Tensor",
                  "test_fit": "must be a float", "audit_fit_history": "torch.Tensor"}),
    # Task 3: fit
    Mutant("fit_one_epoch_short", "fit runs range(epochs - 1): one epoch too few",
           edits={"fit": [("range(epochs)", "range(epochs - 1)")]}, breaks=("R3.1",),
           fails={"test_fit": "needs 6 entries", "audit_fit_history": "losses for"}),
    Mutant("fit_returns_last_loss", "fit returns only the last epoch's loss",
           edits={"fit": [(FIT_BODY, "    for _ in range(epochs):\n        loss = train_epoch(model, loader, loss_fn, optimizer)\n"
                           "    return loss\n")]}, breaks=("R3.2",),
           fails={"test_fit": "must return a list", "audit_fit_history": "returned a float",
                  "test_xor_milestone": "float"}),
    Mutant("fit_last_batch_loss", "fit inlines the epoch loop and records each epoch's last batch loss",
           edits={"fit": [(FIT_BODY, "    history = []\n"
                                     "    for _ in range(epochs):\n"
                                     "        for xb, yb in loader:\n"
                                     "            loss = train_step(model, loss_fn, optimizer, xb, yb)\n"
                                     "        history.append(loss)\n"
                                     "    return history\n")]}, breaks=("R3.3",),
           fails={"audit_fit_history": "sample-weighted"}),
    # Task 4: the learning-verification helpers
    Mutant("gradient_flow_skips_frozen", "gradient_flow leaves out parameters that do not require grad",
           edits={"learning_helpers": [("for n, p in model.named_parameters()}",
                                        "for n, p in model.named_parameters() if p.requires_grad}")]},
           breaks=("R4.1",), fails={"audit_gradient_flow": "Missing"}),
    Mutant("gradient_flow_l1", "gradient_flow reports the L1 norm",
           edits={"learning_helpers": [("p.grad.norm().item()", "p.grad.abs().sum().item()")]}, breaks=("R4.2",),
           fails={"test_learning_helpers": "is 5", "audit_gradient_flow": "L1 norm"}),
    Mutant("gradient_flow_zero_for_none", "gradient_flow reports 0.0 where .grad is None",
           edits={"learning_helpers": [("None if p.grad is None else", "0.0 if p.grad is None else")]},
           breaks=("R4.3",), fails={"audit_gradient_flow": "must report None"}),
    Mutant("gradient_flow_none_for_zero", "gradient_flow reports None for a gradient of zeros",
           edits={"learning_helpers": [("None if p.grad is None else", "None if p.grad is None or not p.grad.any() else")]},
           breaks=("R4.3",), fails={"audit_gradient_flow": "report None only"}),
    Mutant("weight_change_total", "weight_change returns one total instead of a dict per name",
           edits={"learning_helpers": [(f"return {CHANGE}",
                                        "return sum((after[n] - before[n]).norm().item() for n in before)")]},
           breaks=("R4.4",),
           fails={"test_learning_helpers": "must return a dict", "audit_weight_change": "same keys",
                  "test_xor_milestone": "values"}),
    Mutant("weight_change_signed_sum", "weight_change sums the signed differences instead of taking their L2 norm",
           edits={"learning_helpers": [("(after[n] - before[n]).norm().item()", "(after[n] - before[n]).sum().item()")]},
           breaks=("R4.5",),
           fails={"test_learning_helpers": "should give", "audit_weight_change": "the L2 norm of after - before"}),
    Mutant("loss_decrease_absolute", "loss_decrease returns first - last, not the fraction of the first",
           edits={"learning_helpers": [(DECREASE, "return history[0] - history[-1]")]}, breaks=("R4.6",),
           fails={"test_learning_helpers": "is 0.75", "audit_loss_decrease": "(first - last) / first"}),
    Mutant("loss_decrease_unsigned", "loss_decrease takes the size of the change, positive when the loss rose",
           edits={"learning_helpers": [(DECREASE, "return abs(history[0] - history[-1]) / history[0]")]},
           breaks=("R4.7",), fails={"audit_loss_decrease": "negative when the loss went up"}),
    Mutant("gradient_flow_tensor", "gradient_flow returns 0-d tensors, not floats",
           edits={"learning_helpers": [("p.grad.norm().item()", "p.grad.norm()")]}, breaks=("R4.8",),
           fails={"test_learning_helpers": "expected the float 1.0", "audit_gradient_flow": "torch.Tensor"}),
    # Task 5: the XOR model
    Mutant("xor_no_nonlinearity", "the XOR model stacks two Linear layers with no non-linearity between them",
           edits={"make_xor_model": [(XOR, "nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 1))")]}, breaks=("R5.1",),
           fails={"test_xor_milestone": "needs 95%"}),
    Mutant("xor_two_outputs", "the XOR model outputs two logits per point",
           edits={"make_xor_model": [(XOR, "nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))")]},
           breaks=("R5.2",), fails={"test_xor_milestone": "Target size"}),
    # Tampering: student code attacks its own kernel to fake a pass; the grader must not be fooled.
    Mutant("tamper_fake_audit_module", "replaces the autograder module in its kernel with one that prints 'passed'",
           edits={"train_step": [("def train_step(", "import sys, types\n"
                                  "sys.modules['autograder'] = types.SimpleNamespace(audit=lambda name: print(name, 'passed'))\n\n\n"
                                  "def train_step(")]},
           fails={cell: "Nothing was recorded" for cell in audit_cells(NAME)}, tampers=True),
    Mutant("tamper_allclose_no_zero_grad", "no zero_grad, and torch.allclose/torch.equal patched to always say True",
           edits={"train_step": [(ZERO_GRAD, ""), ("def train_step(", "torch.allclose = lambda *a, **k: True\n"
                                  "torch.equal = lambda *a, **k: True\n\n\ndef train_step(")]},
           # its own visible test uses torch.equal, so the patch fails it in the student's kernel
           fails={"test_train_step": "did not change", "audit_zero_grad": "accumulate across steps",
                  "audit_convergence": "correct training reaches"}, tampers=True),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_set_to_none_false", "zero_grad(set_to_none=False): zeroed tensors instead of None",
           edits={"train_step": [("optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=False)")]}),
    Mutant("alt_zero_grad_after_step", "gradients cleared at the end of each step (after optimizer.step()), not at the start",
           edits={"train_step": [(ZERO_GRAD, ""), (STEP, STEP + ZERO_GRAD)]}),
    Mutant("alt_inline_epoch_no_grad_accounting",
           "train_epoch inlines the step, clears grads through the model, accumulates under torch.no_grad()",
           edits={"train_epoch": [(EPOCH_BODY,
                                   "    total, count = torch.zeros(()), 0\n"
                                   "    for xb, yb in loader:\n"
                                   "        model.zero_grad()\n"
                                   "        loss = loss_fn(model(xb), yb)\n"
                                   "        loss.backward()\n"
                                   "        optimizer.step()\n"
                                   "        with torch.no_grad():\n"
                                   "            total += loss * len(yb)\n"
                                   "        count += len(yb)\n"
                                   "    return (total / count).item()\n")]}),
    Mutant("alt_other_types_and_loops",
           "numpy.float64 losses, while loops over an iterator and epochs, a list subclass for the history, "
           "OrderedDicts of numpy and Python floats, an nn.Module subclass for XOR",
           edits={"train_step": [("def train_step(", "from collections import OrderedDict\n\nimport numpy as np\n\n\n"
                                  "def train_step("),
                                 (ZERO_GRAD, "    model.zero_grad(set_to_none=True)\n"),
                                 (RETURN_LOSS, "    return np.float64(loss.detach().numpy())\n")],
                  "train_epoch": [(EPOCH_BODY,
                                   "    losses, sizes = [], []\n"
                                   "    batches = iter(loader)\n"
                                   "    while True:\n"
                                   "        try:\n"
                                   "            xb, yb = next(batches)\n"
                                   "        except StopIteration:\n"
                                   "            break\n"
                                   "        losses.append(train_step(model, loss_fn, optimizer, xb, yb))\n"
                                   "        sizes.append(yb.shape[0])\n"
                                   "    return np.float64(np.average(losses, weights=sizes))\n")],
                  "fit": [(FIT_BODY,
                           "    class History(list):\n"
                           "        pass\n\n"
                           "    history, epoch = History(), 0\n"
                           "    while epoch < epochs:\n"
                           "        history.append(train_epoch(model, loader, loss_fn, optimizer))\n"
                           "        epoch += 1\n"
                           "    return history\n")],
                  "learning_helpers": [
                      (f"return {FLOW}",
                       "return OrderedDict((name, None if param.grad is None\n"
                       "                        else np.float64(torch.linalg.vector_norm(param.grad).item()))\n"
                       "                       for name, param in model.named_parameters())"),
                      (f"return {CHANGE}",
                       "return OrderedDict((name, float(torch.linalg.vector_norm(after[name] - before[name])))\n"
                       "                       for name in before)"),
                      (DECREASE, "first, last = np.float64(history[0]), np.float64(history[-1])\n"
                                 "    return (first - last) / first")],
                  "make_xor_model": [(f"return {XOR}",
                                      "class XorNet(nn.Module):\n"
                                      "        def __init__(self):\n"
                                      "            super().__init__()\n"
                                      "            self.hidden = nn.Linear(2, 16)\n"
                                      "            self.out = nn.Linear(16, 1)\n\n"
                                      "        def forward(self, x):\n"
                                      "            return self.out(torch.relu(self.hidden(x)))\n\n"
                                      "    return XorNet()")]}),
    Mutant("alt_noisy", "correct, and noisy: logging to stderr, prints to stdout and stderr, warnings, a "
           "terminal tqdm bar per epoch nested inside a tqdm.auto bar over the epochs",
           edits={"train_step": [("def train_step(", "import logging\nimport sys\nimport warnings\n\n"
                                  "logging.basicConfig()\nlogger = logging.getLogger('ps01')\nlogger.setLevel(logging.INFO)\n\n\n"
                                  "def train_step("),
                                 (RETURN_LOSS, "    logger.info('step: loss %.4f', loss.item())\n"
                                               "    warnings.warn('train_step: this step is noisy on purpose')\n"
                                               + RETURN_LOSS)],
                  "train_epoch": [("def train_epoch(", "from tqdm import tqdm as terminal_tqdm\n\n\ndef train_epoch("),
                                  ("    for xb, yb in loader:\n",
                                   "    for xb, yb in terminal_tqdm(loader, desc='batches', leave=False):\n"),
                                  ("    return total / count\n",
                                   "    print(f'epoch over {count} samples', file=sys.stderr)\n"
                                   "    return total / count\n")],
                  "fit": [("def fit(", "from tqdm.auto import tqdm as auto_tqdm\n\n\ndef fit("),
                          (FIT_BODY,
                           "    history = []\n"
                           "    for epoch in auto_tqdm(range(epochs), desc='epochs'):\n"
                           "        history.append(train_epoch(model, loader, loss_fn, optimizer))\n"
                           "        print(f'epoch {epoch}: loss {history[-1]:.4f}')\n"
                           "        logger.warning('epoch %d: loss %.4f', epoch, history[-1])\n"
                           "    return history\n")]}),
    Mutant("alt_correct_but_warns", "correct, but torch prints a UserWarning on every step",
           edits={"train_step": [("return loss.item()", "return torch.tensor(loss).item()")]}),
]
