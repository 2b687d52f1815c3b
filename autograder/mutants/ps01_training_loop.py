"""The ps01_training_loop matrix: each bug students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, audit_cells, grade_cells

NAME = "ps01_training_loop"

ZERO_GRAD = "    optimizer.zero_grad()\n"
BACKWARD = "    loss.backward()\n"
STEP = "    optimizer.step()\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("no_zero_grad", "optimizer.zero_grad() left out",
           edits={"train_step": [(ZERO_GRAD, "")]},
           fails={"audit_zero_grad": "accumulate across steps", "audit_convergence": "decrease"}),
    Mutant("zero_grad_after_backward", "optimizer.zero_grad() between backward() and step()",
           edits={"train_step": [(ZERO_GRAD, ""), (BACKWARD, BACKWARD + ZERO_GRAD)]},
           fails={"test_train_step": "did not change", "audit_zero_grad": "ran after loss.backward()",
                  "audit_every_parameter_learns": "had no gradient",
                  "test_train_epoch": "should lower the loss", "test_fit": "should fall",
                  "audit_convergence": "decrease", "test_xor_milestone": "needs 95%"}),
    Mutant("no_step", "optimizer.step() left out",
           edits={"train_step": [(STEP, "")]},
           fails={"test_train_step": "did not change", "audit_every_parameter_learns": "never called optimizer.step()",
                  "audit_one_step_per_batch": "0 time(s)", "test_train_epoch": "should lower the loss",
                  "test_fit": "should fall", "audit_convergence": "decrease", "test_xor_milestone": "needs 95%"}),
    Mutant("step_before_backward", "optimizer.step() called before loss.backward()",
           edits={"train_step": [(STEP, ""), (BACKWARD, STEP + BACKWARD)]},
           fails={"test_train_step": "did not change", "audit_every_parameter_learns": "before loss.backward()",
                  "test_train_epoch": "should lower the loss", "test_fit": "should fall",
                  "audit_convergence": "decrease", "test_xor_milestone": "needs 95%"}),
    Mutant("backward_twice", "loss.backward() called twice in one step",
           edits={"train_step": [(BACKWARD, "    loss.backward(retain_graph=True)\n" + BACKWARD)]},
           fails={"audit_zero_grad": "twice"}),
    Mutant("loss_as_tensor", "train_step returns the loss tensor, not loss.item()",
           edits={"train_step": [("return loss.item()", "return loss")]},
           fails={"test_train_step": "Python float", "audit_step_loss": "torch.Tensor",
                  "test_train_epoch": "must return a float", "audit_epoch_mean": "torch.Tensor",
                  "test_fit": "must be a float", "audit_fit_history": "torch.Tensor",
                  "test_xor_milestone": "requires grad"}),
    Mutant("losses_kept_alive", "train_step keeps every loss tensor in a global list (a memory leak)",
           edits={"train_step": [("def train_step(", "all_losses = []\n\n\ndef train_step("),
                                 ("    return loss.item()", "    all_losses.append(loss)\n    return loss.item()")]},
           fails={"audit_step_loss": "still alive"}),
    Mutant("unweighted_epoch_mean", "train_epoch averages batch losses, ignoring batch sizes",
           edits={"train_epoch": [("* len(yb)", ""), ("count += len(yb)", "count += 1")]},
           fails={"audit_epoch_mean": "plain average", "audit_fit_history": "sample-weighted"}),
    Mutant("fit_returns_last_loss", "fit returns only the last epoch's loss",
           edits={"fit": [("return [train_epoch(model, loader, loss_fn, optimizer) for _ in range(epochs)]",
                           "for _ in range(epochs):\n        loss = train_epoch(model, loader, loss_fn, optimizer)\n"
                           "    return loss")]},
           fails={"test_fit": "must return a list", "audit_fit_history": "returned a float",
                  "test_xor_milestone": "float"}),
    Mutant("gradient_flow_l1", "gradient_flow reports the L1 norm",
           edits={"learning_helpers": [("p.grad.norm().item()", "p.grad.abs().sum().item()")]},
           fails={"test_learning_helpers": "is 5", "audit_gradient_flow": "L1 norm"}),
    Mutant("weight_change_signed_sum", "weight_change sums the signed differences instead of taking their L2 norm",
           edits={"learning_helpers": [("(after[n] - before[n]).norm().item()", "(after[n] - before[n]).sum().item()")]},
           fails={"test_learning_helpers": "should give", "audit_weight_change": "the L2 norm of after - before"}),
    Mutant("loss_decrease_absolute", "loss_decrease returns first - last, not the fraction of the first",
           edits={"learning_helpers": [("return (history[0] - history[-1]) / history[0]",
                                        "return history[0] - history[-1]")]},
           fails={"test_learning_helpers": "is 0.75", "audit_loss_decrease": "(first - last) / first"}),
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
                  "audit_convergence": "decrease"}, tampers=True),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_set_to_none_false", "zero_grad(set_to_none=False): zeroed tensors instead of None",
           edits={"train_step": [("optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=False)")]}),
    Mutant("alt_inline_epoch_no_grad_accounting",
           "train_epoch inlines the step, clears grads through the model, accumulates under torch.no_grad()",
           edits={"train_epoch": [(
               "    total, count = 0.0, 0\n"
               "    for xb, yb in loader:\n"
               "        total += train_step(model, loss_fn, optimizer, xb, yb) * len(yb)\n"
               "        count += len(yb)\n"
               "    return total / count\n",
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
    Mutant("alt_correct_but_warns", "correct, but torch prints a UserWarning on every step",
           edits={"train_step": [("return loss.item()", "return torch.tensor(loss).item()")]}),
]
