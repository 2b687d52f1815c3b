"""The ps07_capstone_trainer matrix: the bugs of a Trainer that combines everything (each earlier
assignment's bug in its new setting, and the checkpoint and resume bugs), and two other correct Trainers."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps07_capstone_trainer"

STEP, EVAL, CKPT, FIT = "step_trainer", "eval_trainer", "checkpoint_trainer", "trainer"
ZERO_GRAD = "            self.optimizer.zero_grad()\n"
MICRO_LOOP = "            for xb, yb in window:\n"
SCALED_BACKWARD = "(loss * len(yb) / n).backward()"
COUNTED = "                count += len(yb)\n"
CLIP = ("            if self.max_grad_norm is not None:\n"
        "                nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)\n")
LOG_NORM = '            self.history["grad_norm"].append(nn.utils.get_total_norm(grads).item())\n'
LOG_LR = '            self.history["lr"].append(self.optimizer.param_groups[0]["lr"])\n'
LOG_STEP = "            grads = [p.grad for p in self.model.parameters() if p.grad is not None]\n" + LOG_NORM + LOG_LR
OPT_STEP = "            self.optimizer.step()\n"
SCHED_STEP = "            if self.scheduler is not None:\n                self.scheduler.step()\n"
EPOCH_BODY = ("            train_loss = self.train_epoch(train_loader)\n"
              "            scores = self.evaluate(val_loader)\n")
RECORD = ('            self.history["train_loss"].append(train_loss)\n'
          '            self.history["val_loss"].append(scores["loss"])\n'
          '            self.history["val_accuracy"].append(scores["accuracy"])\n'
          "            self.epoch += 1\n")
SAVE_EPOCH = ("            if self.ckpt_dir is not None:\n"
              "                self.save(checkpoint_path(self.ckpt_dir, self.epoch))\n")
CALLBACKS = ("            if any([callback(self) for callback in self.callbacks]):\n"
             "                break\n")

TRAIN_EPOCH = (
    "        self.model.train()\n"
    "        total, count = 0.0, 0\n"
    '        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False)\n'
    "        batches = iter(bar)\n"
    "        while window := list(itertools.islice(batches, self.accum_steps)):\n"
    "            n = sum(len(yb) for _, yb in window)\n"
    + ZERO_GRAD + MICRO_LOOP +
    "                xb, yb = xb.to(self.device), yb.to(self.device)\n"
    "                loss = self.loss_fn(self.model(xb), yb)\n"
    "                " + SCALED_BACKWARD + "\n"
    "                total += loss.item() * len(yb)\n"
    + COUNTED + LOG_STEP + CLIP + OPT_STEP + SCHED_STEP +
    '            bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)\n'
    "        return total / count\n")
EVALUATE_LOOP = (
    "        with torch.no_grad():\n"
    "            for xb, yb in loader:\n"
    "                xb, yb = xb.to(self.device), yb.to(self.device)\n"
    "                output = self.model(xb)\n"
    "                total += self.loss_fn(output, yb).item() * len(yb)\n"
    "                correct += (output.argmax(dim=1) == yb).sum().item()\n"
    "                samples += len(yb)\n"
    "                labels += yb.numel()\n"
    "        self.model.train(was_training)\n")
LOAD_BODY_START = '        state = torch.load(path, map_location="cpu", weights_only=True)\n'
LOAD_BODY_END = '        self.loader_state = state["loader_rng"]\n'
FIT_START = "        latest = latest_checkpoint(self.ckpt_dir)\n"
FIT_END = "        return self.history\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    # Task 1: train_epoch
    Mutant("no_zero_grad", breaks=("R1.2",), why="optimizer.zero_grad() left out: gradients pile up across windows",
           edits={STEP: [(ZERO_GRAD, "")]},
           fails={"audit_zero_grad": "still held an earlier gradient", "audit_accumulation": "previous window",
                  "test_fit": "should fall", "audit_resume_equality": "gradients carried",
                  "audit_milestone": "token accuracy"}),
    Mutant("zero_grad_every_micro_batch", breaks=("R1.2",), why="optimizer.zero_grad() inside the micro-batch loop",
           edits={STEP: [(ZERO_GRAD, ""), (MICRO_LOOP, MICRO_LOOP + "    " + ZERO_GRAD)]},
           fails={"test_train_epoch": "should train exactly like", "audit_zero_grad": "inside the micro-batch loop",
                  "audit_accumulation": "only the last micro-batch", "audit_clipping": "fix that first"}),
    Mutant("loss_not_scaled", breaks=("R1.3",), why="backward() on each unscaled micro-batch loss: the window's gradient is a sum",
           edits={STEP: [(SCALED_BACKWARD, "loss.backward()")]},
           fails={"test_train_epoch": "should train exactly like", "audit_accumulation": "too large"}),
    Mutant("divide_by_accum_steps", breaks=("R1.3",), why="each loss divided by accum_steps: wrong for a short window or micro-batch",
           edits={STEP: [(SCALED_BACKWARD, "(loss / self.accum_steps).backward()")]},
           fails={"audit_accumulation": "divided by accum_steps"}),
    Mutant("leftover_window_dropped", breaks=("R1.5",), why="a last window shorter than accum_steps is skipped",
           edits={STEP: [("            n = sum(", "            if len(window) < self.accum_steps:\n"
                                                 "                break\n            n = sum(")]},
           fails={"audit_zero_grad": "backward() reached the loss", "audit_accumulation": "leftover window was dropped"}),
    Mutant("scheduler_every_micro_batch", breaks=("R1.9",), headline=True, why="scheduler.step() after every micro-batch instead of every optimizer step",
           edits={STEP: [(SCHED_STEP, ""), (COUNTED, COUNTED + "    " + SCHED_STEP.replace("\n    ", "\n        "))]},
           fails={"test_train_epoch": "StepLR", "audit_lr_schedule": "once per micro-batch",
                  "test_cnn_milestone": "Tried to step", "test_transformer_milestone": "Tried to step",
                  "audit_milestone": "Tried to step"}),
    Mutant("scheduler_before_optimizer", breaks=("R1.10",), why="scheduler.step() before optimizer.step(): every LR one step early",
           edits={STEP: [(OPT_STEP + SCHED_STEP, SCHED_STEP + OPT_STEP)]},
           fails={"audit_lr_schedule": "before optimizer.step()"}),
    Mutant("clip_every_micro_batch", breaks=("R1.7",), why="the gradient clipped after each micro-batch's backward, inside the window",
           edits={STEP: [(CLIP, ""), (COUNTED, COUNTED + "    " + CLIP.replace("\n    ", "\n        "))]},
           fails={"audit_clipping": "inside the window", "audit_step_log": "after clipping"}),
    Mutant("clip_after_step", breaks=("R1.7",), why="clip_grad_norm_ after optimizer.step(): the step applies the unclipped gradient",
           edits={STEP: [(CLIP + OPT_STEP, OPT_STEP + CLIP)]},
           fails={"test_train_epoch": "move the weights by at most", "audit_clipping": "after the step"}),
    Mutant("step_log_missing", breaks=("R1.15", "R1.16"), why="train_epoch trains right but never records the steps' LR and gradient norm",
           edits={STEP: [(LOG_STEP, "")]},
           fails={"test_train_epoch": "one entry per optimizer step", "audit_step_log": "held 0 entries"}),
    Mutant("grad_norm_after_clipping", breaks=("R1.15",), why="the gradient norm read after clip_grad_norm_: every clipped step records max_grad_norm",
           edits={STEP: [(LOG_STEP + CLIP, CLIP + LOG_STEP)]},
           fails={"audit_step_log": "after clipping"}),
    Mutant("grad_norm_as_tensor", breaks=("R1.15",), why="the norm appended as the tensor get_total_norm returns",
           edits={STEP: [(LOG_NORM, LOG_NORM.replace(".item()", ""))]},
           fails={"test_train_epoch": "should hold Python floats", "audit_step_log": "torch.Tensor"}),
    Mutant("grad_norm_every_micro_batch", breaks=("R1.15",), why="the gradient norm recorded after every micro-batch's backward: one entry per micro-batch",
           edits={STEP: [(LOG_STEP, LOG_LR), (COUNTED, COUNTED + "    " + LOG_STEP.replace(LOG_LR, "").replace("\n    ", "\n        "))]},
           fails={"audit_step_log": "once per window"}),
    Mutant("lr_after_scheduler_step", breaks=("R1.16",), why="the LR read after scheduler.step(): each entry is the next step's",
           edits={STEP: [(LOG_LR, ""), (SCHED_STEP, SCHED_STEP + LOG_LR)]},
           fails={"test_train_epoch": "read before scheduler.step()", "audit_step_log": "the step after it"}),
    Mutant("step_log_restarted_each_epoch", breaks=("R1.17",), why="train_epoch starts history['lr'] and history['grad_norm'] over every epoch",
           edits={STEP: [("        self.model.train()\n", "        self.model.train()\n"
                                                        '        self.history["lr"], self.history["grad_norm"] = [], []\n')]},
           fails={"audit_step_log": "never starts them over"}),
    # Task 2: evaluate
    Mutant("no_eval_mode", breaks=("R2.5",), why="evaluate never calls model.eval(): Dropout and BatchNorm stay in train mode",
           edits={EVAL: [("        self.model.eval()\n", "")]},
           fails={"test_evaluate": "Dropout still drops", "audit_eval_mode": "Dropout was still dropping"}),
    Mutant("mode_not_restored", breaks=("R2.7",), why="evaluate leaves the model in eval mode",
           edits={EVAL: [("        self.model.train(was_training)\n", "")]},
           fails={"test_evaluate": "leave it in train mode", "audit_eval_mode": "left in eval mode"}),
    Mutant("accuracy_per_sequence", breaks=("R2.4",), why="accuracy divides the right tokens by the number of sequences",
           edits={EVAL: [('"accuracy": correct / labels', '"accuracy": correct / samples')]},
           fails={"test_evaluate": "yb.numel()", "audit_evaluate_values": "number of sequences",
                  "test_transformer_milestone": "above 100%"}),
    # Task 3: save and load
    Mutant("no_optimizer_state", breaks=("R3.2",), why="load restores everything but the optimizer (Adam's moments)",
           edits={CKPT: [('        self.optimizer.load_state_dict(state["optimizer"])\n', "")]},
           fails={"audit_resume_equality": "Adam's state"}),
    Mutant("no_scheduler_state", breaks=("R3.3",), why="load does not restore the scheduler",
           edits={CKPT: [('            self.scheduler.load_state_dict(state["scheduler"])\n', "            pass\n")]},
           fails={"audit_resume_equality": "scheduler's state"}),
    Mutant("no_torch_rng", breaks=("R3.6",), why="torch's RNG state is not restored: Dropout draws other masks",
           edits={CKPT: [('        torch.set_rng_state(state["torch_rng"])\n', "")]},
           fails={"audit_resume_equality": "torch RNG"}),
    Mutant("no_numpy_rng", breaks=("R3.7",), why="numpy's global RNG is not restored: other augmentation",
           edits={CKPT: [("        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n",
                          "")]},
           fails={"audit_resume_equality": "numpy's global RNG"}),
    Mutant("no_python_rng", breaks=("R3.8",), why="Python's random is not restored",
           edits={CKPT: [('        random.setstate(state["python_rng"])\n', "")]},
           fails={"audit_resume_equality": "Python's random"}),
    Mutant("no_loader_generator", breaks=("R3.9",), why="the DataLoader's generator state is not kept: other shuffles after resuming",
           edits={CKPT: [(LOAD_BODY_END, "")]},
           fails={"audit_resume_equality": "DataLoader's generator"}),
    Mutant("numpy_state_as_array", breaks=("R3.13",), why="np.random.get_state() saved as is: torch.load(weights_only=True) refuses it",
           edits={CKPT: [('"numpy_rng": [kind, keys.tolist(), pos, has_gauss, cached]', '"numpy_rng": np.random.get_state()'),
                         ("        kind, keys, pos, has_gauss, cached = np.random.get_state()\n", ""),
                         ("        kind, keys, pos, has_gauss, cached = state[\"numpy_rng\"]\n"
                          "        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n",
                          '        np.random.set_state(state["numpy_rng"])\n')]},
           fails={"test_checkpoint": "weights_only=True", "audit_resume_equality": "Weights only load failed",
                  "audit_resume_latest": "Weights only load failed", "audit_checkpoint_safety": "Weights only load failed"}),
    Mutant("no_history_in_checkpoint", breaks=("R3.5",), why="the history is not restored: a resumed run forgets its first epochs",
           edits={CKPT: [('        self.epoch, self.history = state["epoch"], state["history"]\n',
                          '        self.epoch = state["epoch"]\n')]},
           fails={"test_checkpoint": "the history should be", "audit_resume_equality": "another history"}),
    # Task 4: fit
    Mutant("epochs_not_total", breaks=("R4.4",), why="fit trains `epochs` more epochs, whatever the Trainer has done already",
           edits={FIT: [("        while self.epoch < epochs:\n", "        for _ in range(epochs):\n")]},
           fails={"audit_resume_equality": "more epochs instead of", "audit_resume_latest": "epochs is the total"}),
    Mutant("no_resume", breaks=("R4.1",), why="fit ignores the checkpoints in ckpt_dir",
           edits={FIT: [("        if latest is not None:\n            self.load(latest)\n", "")]},
           fails={"audit_resume_latest": "did not resume"}),
    Mutant("checkpoint_before_validation", breaks=("R4.8",), why="the epoch's checkpoint is saved before evaluate and the history",
           edits={FIT: [(RECORD + SAVE_EPOCH, RECORD), (EPOCH_BODY, EPOCH_BODY.replace(
               "            scores", "            if self.ckpt_dir is not None:\n"
                                   "                self.save(checkpoint_path(self.ckpt_dir, self.epoch + 1))\n"
                                   "            scores"))]},
           fails={"audit_resume_latest": "before the epoch was complete"}),
    Mutant("validation_before_training", breaks=("R4.5",), why="each epoch evaluates first, then trains: the history lags an epoch",
           edits={FIT: [(EPOCH_BODY, "            scores = self.evaluate(val_loader)\n"
                                     "            train_loss = self.train_epoch(train_loader)\n")]},
           fails={"test_fit": "the trained model's validation loss", "audit_history": "after each epoch's training"}),
    Mutant("callbacks_before_recording", breaks=("R4.10",), why="the callbacks run before the epoch is counted and recorded",
           edits={FIT: [(RECORD + SAVE_EPOCH + CALLBACKS,
                         "            if any([callback(self) for callback in self.callbacks]):\n"
                         "                stop = True\n"
                         "            else:\n"
                         "                stop = False\n" + RECORD + SAVE_EPOCH +
                         "            if stop:\n                break\n")]},
           fails={"test_fit": "once after every epoch", "audit_history": "before calling the callbacks"}),
    Mutant("callback_stop_ignored", breaks=("R4.11",), why="a callback returning True does not stop fit",
           edits={FIT: [(CALLBACKS, "            for callback in self.callbacks:\n                callback(self)\n")]},
           fails={"test_fit": "so fit should stop there", "audit_history": "any callback returns True"}),
]

EVAL_TOTAL = "                total += self.loss_fn(output, yb).item() * len(yb)\n"
ANY_CALLBACK = "            if any([callback(self) for callback in self.callbacks]):\n"
LOAD_MODEL = '        self.model.load_state_dict(state["model"])\n'
MKDIR = "        path.parent.mkdir(parents=True, exist_ok=True)\n"
TOTAL = "                total += loss.item() * len(yb)\n"

MUTANTS += [
    # Task 1, more of the bugs its requirements name
    Mutant("no_train_mode", breaks=("R1.1",), why="train_epoch never calls model.train(): a model handed over in eval mode trains in eval mode",
           edits={STEP: [("        self.model.train()\n", "")]},
           fails={"audit_accumulation": "put the model in train mode"}),
    Mutant("step_every_micro_batch", breaks=("R1.4",), why="optimizer.step() after every micro-batch instead of once per window",
           edits={STEP: [(CLIP + OPT_STEP, CLIP), (COUNTED, COUNTED + "    " + OPT_STEP)]},
           fails={"test_train_epoch": "should train exactly like", "audit_accumulation": "after every micro-batch",
                  "audit_lr_schedule": "optimizer.step() ran", "audit_clipping": "one window is one step",
                  "audit_convergence": "optimizer steps instead of"}),
    Mutant("clip_per_parameter", breaks=("R1.6",), why="each parameter's gradient clipped to max_grad_norm on its own",
           edits={STEP: [(CLIP, "            if self.max_grad_norm is not None:\n"
                                "                for p in self.model.parameters():\n"
                                "                    nn.utils.clip_grad_norm_(p, self.max_grad_norm)\n")]},
           fails={"test_train_epoch": "move the weights by at most", "audit_clipping": "by its own norm"}),
    Mutant("clip_without_max_norm", breaks=("R1.8",), headline=True,
           why="clip_grad_norm_ called even when max_grad_norm is None (the default)",
           edits={STEP: [(CLIP, "            nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)\n")]},
           fails={"test_train_epoch": "TypeError", "audit_zero_grad": "TypeError", "audit_accumulation": "TypeError",
                  "audit_lr_schedule": "TypeError", "test_checkpoint": "TypeError", "test_fit": "TypeError",
                  "audit_step_log": "TypeError", "audit_history": "TypeError", "audit_resume_equality": "TypeError",
                  "audit_resume_latest": "TypeError", "audit_milestone": "TypeError"}),
    Mutant("scheduler_none_not_handled", breaks=("R1.11",), headline=True,
           why="scheduler.step() called even when scheduler is None (the default)",
           edits={STEP: [(SCHED_STEP, "            self.scheduler.step()\n")]},
           fails={"test_train_epoch": "AttributeError", "audit_zero_grad": "AttributeError",
                  "audit_accumulation": "AttributeError", "audit_clipping": "AttributeError",
                  "audit_step_log": "AttributeError", "test_fit": "AttributeError", "audit_history": "AttributeError"}),
    Mutant("loss_mean_of_batch_means", breaks=("R1.12",), why="the epoch's loss averages the micro-batch means, unweighted",
           edits={STEP: [(TOTAL, "                total += loss.item()\n"), (COUNTED, "                count += 1\n")]},
           fails={"audit_accumulation": "per sample", "audit_history": "history['train_loss']"}),
    Mutant("loss_reported_scaled", breaks=("R1.13",), why="the epoch's loss sums the scaled losses that went to backward()",
           edits={STEP: [("                " + SCALED_BACKWARD + "\n", "                loss = loss * len(yb) / n\n"
                                                                 "                loss.backward()\n")]},
           fails={"test_train_epoch": "should not depend on accumulation", "audit_accumulation": "before scaling"}),
    Mutant("loss_returned_as_tensor", breaks=("R1.14",), why="train_epoch sums loss.detach() and returns a tensor",
           edits={STEP: [(TOTAL, "                total += loss.detach() * len(yb)\n")]},
           fails={"test_train_epoch": "must return a Python float", "audit_accumulation": "torch.Tensor",
                  "test_fit": "should hold 4 floats", "audit_history": "torch.Tensor",
                  "audit_resume_equality": "torch.Tensor"}),
    # Task 2
    Mutant("eval_loss_as_tensor", breaks=("R2.1",), why="evaluate sums the loss tensors: its loss is a tensor",
           edits={EVAL: [(EVAL_TOTAL, "                total += self.loss_fn(output, yb) * len(yb)\n")]},
           fails={"test_evaluate": "Python floats", "audit_eval_mode": "torch.Tensor",
                  "audit_evaluate_values": "torch.Tensor", "test_fit": "should hold 4 floats",
                  "audit_history": "torch.Tensor", "audit_resume_equality": "torch.Tensor"}),
    Mutant("eval_loss_mean_of_batches", breaks=("R2.2",), why="evaluate averages the batch losses, unweighted",
           edits={EVAL: [(EVAL_TOTAL, "                total += self.loss_fn(output, yb).item()\n"),
                         ('"loss": total / samples', '"loss": total / len(loader)')]},
           fails={"audit_evaluate_values": "mean loss per sample"}),
    Mutant("argmax_last_dimension", breaks=("R2.3",), why="the prediction is the argmax over the last dimension",
           edits={EVAL: [("output.argmax(dim=1)", "output.argmax(dim=-1)")]},
           fails={"test_evaluate": "must match the size", "audit_evaluate_values": "over dimension 1",
                  "audit_milestone": "must match the size", "test_transformer_milestone": "must match the size"}),
    Mutant("autograd_on_in_evaluate", breaks=("R2.6",), why="evaluate runs without torch.no_grad(): every batch builds a graph",
           edits={EVAL: [(EVALUATE_LOOP,
                          "        for xb, yb in loader:\n"
                          "            xb, yb = xb.to(self.device), yb.to(self.device)\n"
                          "            output = self.model(xb)\n"
                          "            total += self.loss_fn(output, yb).item() * len(yb)\n"
                          "            correct += (output.argmax(dim=1) == yb).sum().item()\n"
                          "            samples += len(yb)\n"
                          "            labels += yb.numel()\n"
                          "        self.model.train(was_training)\n")]},
           fails={"audit_eval_mode": "autograd was on"}),
    # Task 3
    Mutant("no_model_weights", breaks=("R3.1",), why="load restores everything but the model's weights",
           edits={CKPT: [(LOAD_MODEL, "")]},
           fails={"test_checkpoint": "differs from the saved model's", "audit_checkpoint_safety": "other weights",
                  "audit_resume_equality": "other weights", "audit_resume_latest": "other weights"}),
    Mutant("epoch_not_restored", breaks=("R3.4",), why="load restores the history but not self.epoch",
           edits={CKPT: [('        self.epoch, self.history = state["epoch"], state["history"]\n',
                          '        self.history = state["history"]\n')]},
           fails={"test_checkpoint": "epoch should be 1", "audit_resume_equality": "more epochs instead of",
                  "audit_resume_latest": "epochs is the total"}),
    Mutant("no_mkdir", breaks=("R3.10",), why="save does not create the missing folders of path",
           edits={CKPT: [(MKDIR, "")]},
           fails={"test_checkpoint": "does not exist", "audit_checkpoint_safety": "create the missing folders",
                  "audit_resume_equality": "does not exist", "audit_resume_latest": "does not exist"}),
    Mutant("save_not_atomic", breaks=("R3.11",), headline=True,
           why="torch.save(state, path) straight onto the path: a save that fails halfway destroys the checkpoint",
           edits={CKPT: [('        partial = path.with_name(path.name + ".partial")\n'
                          "        torch.save(state, partial)\n"
                          "        os.replace(partial, path)\n", "        torch.save(state, path)\n")]},
           fails={"test_checkpoint": "destroyed the checkpoint", "audit_checkpoint_safety": "destroyed the previous"}),
    Mutant("save_swallows_errors", breaks=("R3.12",), why="save catches the error of a failed write and returns as if saved",
           edits={CKPT: [("        torch.save(state, partial)\n",
                          "        try:\n"
                          "            torch.save(state, partial)\n"
                          "        except Exception as error:  # the disk is full, or the writer failed\n"
                          '            print(f"checkpoint not saved: {error}")\n'
                          "            return\n")]},
           fails={"audit_checkpoint_safety": "reach the caller"}),
    Mutant("load_not_weights_only", breaks=("R3.14",), headline=True,
           why="torch.load(..., weights_only=False): a checkpoint can run any code it names",
           edits={CKPT: [(LOAD_BODY_START, LOAD_BODY_START.replace("weights_only=True", "weights_only=False"))]},
           fails={"test_checkpoint": "ran a function stored in it", "audit_checkpoint_safety": "ran code hidden in it"}),
    Mutant("load_without_map_location", breaks=("R3.15",), headline=True,
           why="torch.load without map_location: a checkpoint written on a GPU does not open without one",
           edits={CKPT: [(LOAD_BODY_START, LOAD_BODY_START.replace('map_location="cpu", ', ""))]},
           fails={"test_checkpoint": "written on a GPU", "audit_checkpoint_safety": "GPU machine"}),
    # Task 4
    Mutant("train_loader_not_kept", breaks=("R4.2",), why="fit never sets self.train_loader: save finds no generator to keep",
           edits={FIT: [("        self.train_loader = train_loader\n", "")]},
           fails={"audit_resume_equality": "DataLoader's generator"}),
    Mutant("loader_state_not_applied", breaks=("R4.3",), why="fit never sets the loaded generator state on train_loader",
           edits={FIT: [("        if self.loader_state is not None and train_loader.generator is not None:\n"
                         "            train_loader.generator.set_state(self.loader_state)\n", "")]},
           fails={"audit_resume_equality": "DataLoader's generator"}),
    Mutant("val_accuracy_gets_loss", breaks=("R4.6",), why="the validation loss appended to history['val_accuracy'] too",
           edits={FIT: [('self.history["val_accuracy"].append(scores["accuracy"])',
                         'self.history["val_accuracy"].append(scores["loss"])')]},
           fails={"audit_history": "history['val_accuracy']"}),
    Mutant("epoch_not_counted", breaks=("R4.7",), why="fit loops over range(self.epoch, epochs) and never counts self.epoch",
           edits={FIT: [("        while self.epoch < epochs:\n", "        for _ in range(self.epoch, epochs):\n"),
                        ("            self.epoch += 1\n", "")]},
           fails={"test_fit": "self.epoch is 0", "audit_history": "trainer.epoch was 0",
                  "audit_resume_equality": "more epochs instead of", "audit_resume_latest": "without epoch_0001.pt"}),
    Mutant("checkpoint_only_at_end", breaks=("R4.8",), why="fit saves one checkpoint when it ends, not one per epoch",
           edits={FIT: [(SAVE_EPOCH, ""), (FIT_END, SAVE_EPOCH.replace("            ", "        ", 1)
                                            .replace("\n                ", "\n            ") + FIT_END)]},
           fails={"audit_resume_latest": "after every epoch"}),
    Mutant("ckpt_dir_none_not_handled", breaks=("R4.9",), headline=True,
           why="fit saves a checkpoint even when ckpt_dir is None (the default)",
           edits={FIT: [(SAVE_EPOCH, "            self.save(checkpoint_path(self.ckpt_dir, self.epoch))\n")]},
           fails={"test_fit": "TypeError", "audit_history": "TypeError", "audit_resume_equality": "TypeError",
                  "audit_convergence": "TypeError", "audit_milestone": "TypeError", "test_mlp_milestone": "TypeError",
                  "test_cnn_milestone": "TypeError", "test_transformer_milestone": "TypeError"}),
    Mutant("callbacks_short_circuit", breaks=("R4.10",), headline=True,
           why="any() over a generator: the callbacks after one that returns True are not called",
           edits={FIT: [(ANY_CALLBACK, "            if any(callback(self) for callback in self.callbacks):\n")]},
           fails={"test_fit": "each runs after every epoch", "audit_history": "every callback runs after every epoch"}),
    Mutant("fit_returns_nothing", breaks=("R4.12",), why="fit records the history but returns None",
           edits={FIT: [(FIT_END, "")]},
           fails={"test_fit": "return the history", "audit_history": "fit returned a NoneType",
                  "audit_resume_equality": "fit returned a NoneType"}),
]

SAVE_BODY = (
    "        path = Path(path)\n"
    "        generator = None if self.train_loader is None else self.train_loader.generator\n"
    "        kind, keys, pos, has_gauss, cached = np.random.get_state()\n")
SAVE_STATE = (
    "        state = {\n"
    '            "model": self.model.state_dict(),\n'
    '            "optimizer": self.optimizer.state_dict(),\n'
    '            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),\n'
    '            "epoch": self.epoch,\n'
    '            "history": self.history,\n'
    '            "torch_rng": torch.get_rng_state(),\n'
    '            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],\n'
    '            "numpy_rng": [kind, keys.tolist(), pos, has_gauss, cached],\n'
    '            "python_rng": random.getstate(),\n'
    '            "loader_rng": None if generator is None else generator.get_state(),\n'
    "        }\n")
SAVE_BODY_END = (
    "        path.parent.mkdir(parents=True, exist_ok=True)\n"
    '        partial = path.with_name(path.name + ".partial")\n'
    "        torch.save(state, partial)\n"
    "        os.replace(partial, path)\n")
LOAD_BODY = (
    LOAD_BODY_START +
    '        self.model.load_state_dict(state["model"])\n'
    '        self.optimizer.load_state_dict(state["optimizer"])\n'
    "        if self.scheduler is not None:\n"
    '            self.scheduler.load_state_dict(state["scheduler"])\n'
    '        self.epoch, self.history = state["epoch"], state["history"]\n'
    '        torch.set_rng_state(state["torch_rng"])\n'
    '        if state["cuda_rng"]:\n'
    '            torch.cuda.set_rng_state_all(state["cuda_rng"])\n'
    '        kind, keys, pos, has_gauss, cached = state["numpy_rng"]\n'
    "        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n"
    '        random.setstate(state["python_rng"])\n' + LOAD_BODY_END)
FIT_BODY = (
    FIT_START +
    "        if latest is not None:\n"
    "            self.load(latest)\n"
    "        self.train_loader = train_loader\n"
    "        if self.loader_state is not None and train_loader.generator is not None:\n"
    "            train_loader.generator.set_state(self.loader_state)\n"
    "        self.loader_state = None\n"
    "        while self.epoch < epochs:\n" + EPOCH_BODY + RECORD + SAVE_EPOCH + CALLBACKS + FIT_END)

MUTANTS += [
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_no_lookahead_manual_clip",
           "train_epoch without look-ahead (sums len(yb) * loss, divides the gradients before the step), clips "
           "by hand, zero_grad(set_to_none=False), a manual bar; evaluate in inference_mode with try/finally",
           edits={STEP: [(TRAIN_EPOCH,
                          "        self.model.train()\n"
                          "        total, count, in_window = 0.0, 0, 0\n"
                          '        with tqdm(total=len(loader), desc="training", leave=False) as bar:\n'
                          "            for i, (xb, yb) in enumerate(loader):\n"
                          "                if i % self.accum_steps == 0:\n"
                          "                    self.optimizer.zero_grad(set_to_none=False)\n"
                          "                    in_window = 0\n"
                          "                xb, yb = xb.to(self.device), yb.to(self.device)\n"
                          "                loss = self.loss_fn(self.model(xb), yb)\n"
                          "                (loss * len(yb)).backward()\n"
                          "                in_window += len(yb)\n"
                          "                total += loss.item() * len(yb)\n"
                          "                count += len(yb)\n"
                          "                bar.update(1)\n"
                          "                if (i + 1) % self.accum_steps and i + 1 < len(loader):\n"
                          "                    continue\n"
                          "                grads = [p.grad for p in self.model.parameters() if p.grad is not None]\n"
                          "                for g in grads:\n"
                          "                    g /= in_window\n"
                          "                norm = torch.stack([g.norm() for g in grads]).norm()\n"
                          '                self.history["grad_norm"].append(float(norm))\n'
                          "                for group in self.optimizer.param_groups[:1]:\n"
                          '                    self.history["lr"].append(group["lr"])\n'
                          "                if self.max_grad_norm is not None:\n"
                          "                    for g in grads:\n"
                          "                        g.mul_((self.max_grad_norm / (norm + 1e-6)).clamp(max=1.0))\n"
                          "                self.optimizer.step()\n"
                          "                if self.scheduler is not None:\n"
                          "                    self.scheduler.step()\n"
                          "                bar.set_postfix(loss=total / count, refresh=False)\n"
                          "        return total / count\n")],
                  EVAL: [(EVALUATE_LOOP,
                          "        try:\n"
                          "            with torch.inference_mode():\n"
                          "                for xb, yb in loader:\n"
                          "                    xb, yb = xb.to(self.device), yb.to(self.device)\n"
                          "                    output = self.model(xb)\n"
                          "                    total += self.loss_fn(output, yb).item() * len(yb)\n"
                          "                    correct += (output.argmax(dim=1) == yb).sum().item()\n"
                          "                    samples += len(yb)\n"
                          "                    labels += yb.numel()\n"
                          "        finally:\n"
                          "            self.model.train(was_training)\n")]}),
    Mutant("alt_plain_tqdm", "the reference with the terminal's tqdm (`from tqdm import tqdm`): its bars go to stderr",
           edits={STEP: [("class StepTrainer:", "from tqdm import tqdm  # the terminal's bar\n\n\nclass StepTrainer:")]}),
    Mutant("alt_other_checkpoint_layout",
           "save/load with other keys, numpy's dict-form state, Python's state as lists, a NamedTemporaryFile; "
           "fit over range(self.epoch, epochs), asking every callback before stopping",
           edits={CKPT: [(SAVE_BODY + SAVE_STATE + SAVE_BODY_END,
                          "        path = Path(path)\n"
                          "        path.parent.mkdir(parents=True, exist_ok=True)\n"
                          "        numpy_state = np.random.get_state(legacy=False)\n"
                          "        numpy_state[\"state\"][\"key\"] = numpy_state[\"state\"][\"key\"].tolist()\n"
                          "        version, internal, gauss = random.getstate()\n"
                          "        loader = getattr(self.train_loader, \"generator\", None)\n"
                          "        checkpoint = {\n"
                          "            \"weights\": self.model.state_dict(),\n"
                          "            \"optim\": self.optimizer.state_dict(),\n"
                          "            \"sched\": self.scheduler.state_dict() if self.scheduler else None,\n"
                          "            \"progress\": {\"epoch\": self.epoch, \"history\": copy.deepcopy(self.history)},\n"
                          "            \"rngs\": {\"torch\": torch.get_rng_state(), \"numpy\": numpy_state,\n"
                          "                     \"python\": [version, list(internal), gauss],\n"
                          "                     \"loader\": loader.get_state() if loader is not None else None},\n"
                          "        }\n"
                          "        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:\n"
                          "            torch.save(checkpoint, f)\n"
                          "        os.replace(f.name, path)\n"),
                         (LOAD_BODY,
                          "        checkpoint = torch.load(path, weights_only=True, map_location=\"cpu\")\n"
                          "        self.model.load_state_dict(checkpoint[\"weights\"])\n"
                          "        self.optimizer.load_state_dict(checkpoint[\"optim\"])\n"
                          "        if self.scheduler:\n"
                          "            self.scheduler.load_state_dict(checkpoint[\"sched\"])\n"
                          "        self.epoch = checkpoint[\"progress\"][\"epoch\"]\n"
                          "        self.history = checkpoint[\"progress\"][\"history\"]\n"
                          "        rngs = checkpoint[\"rngs\"]\n"
                          "        torch.set_rng_state(rngs[\"torch\"])\n"
                          "        numpy_state = rngs[\"numpy\"]\n"
                          "        numpy_state[\"state\"][\"key\"] = np.array(numpy_state[\"state\"][\"key\"], dtype=np.uint32)\n"
                          "        np.random.set_state(numpy_state)\n"
                          "        version, internal, gauss = rngs[\"python\"]\n"
                          "        random.setstate((version, tuple(internal), gauss))\n"
                          "        self.loader_state = rngs[\"loader\"]\n")],
                  FIT: [(FIT_BODY,
                         "        latest = latest_checkpoint(self.ckpt_dir)\n"
                         "        if latest:\n"
                         "            self.load(latest)\n"
                         "        self.train_loader = train_loader\n"
                         "        if self.loader_state is not None:\n"
                         "            train_loader.generator.set_state(self.loader_state)\n"
                         "            self.loader_state = None\n"
                         "        for _ in range(self.epoch, epochs):\n"
                         "            record = {\"train_loss\": self.train_epoch(train_loader)}\n"
                         "            scores = self.evaluate(val_loader)\n"
                         "            record.update(val_loss=scores[\"loss\"], val_accuracy=scores[\"accuracy\"])\n"
                         "            for key, value in record.items():\n"
                         "                self.history[key].append(value)\n"
                         "            self.epoch += 1\n"
                         "            if self.ckpt_dir is not None:\n"
                         "                self.save(checkpoint_path(self.ckpt_dir, self.epoch))\n"
                         "            stop = False\n"
                         "            for callback in self.callbacks:\n"
                         "                stop = bool(callback(self)) or stop\n"
                         "            if stop:\n"
                         "                break\n"
                         "        return self.history\n")]}),
]

MUTANTS += [
    Mutant("alt_numpy_floats_ordered_dicts",
           "train_epoch over a list of the batches in slices of accum_steps, returning a numpy.float64; evaluate "
           "returns an OrderedDict of numpy.float64; the history an OrderedDict (of plain floats, which a "
           "weights_only checkpoint accepts)",
           edits={STEP: [('        self.history = {"train_loss": [], "val_loss": [], "val_accuracy": [],  # one entry per epoch\n'
                          '                        "lr": [], "grad_norm": []}  # one entry per optimizer step\n',
                          "        from collections import OrderedDict\n"
                          "        self.history = OrderedDict(train_loss=[], val_loss=[], val_accuracy=[], lr=[], grad_norm=[])\n"),
                         (TRAIN_EPOCH,
                          "        self.model.train()\n"
                          "        batches = list(loader)\n"
                          "        total, count = np.float64(0.0), 0\n"
                          "        bar = tqdm(total=len(batches), leave=False)\n"
                          "        for start in range(0, len(batches), self.accum_steps):\n"
                          "            window = batches[start:start + self.accum_steps]\n"
                          "            in_window = sum(yb.shape[0] for _, yb in window)\n"
                          "            self.optimizer.zero_grad(set_to_none=True)\n"
                          "            for xb, yb in window:\n"
                          "                output = self.model(xb.to(self.device))\n"
                          "                loss = self.loss_fn(output, yb.to(self.device))\n"
                          "                (loss * (yb.shape[0] / in_window)).backward()\n"
                          "                total += np.float64(loss.item()) * yb.shape[0]\n"
                          "                count += yb.shape[0]\n"
                          "                bar.update()\n"
                          "            lr = self.optimizer.param_groups[0][\"lr\"]\n"
                          "            if self.max_grad_norm is not None:\n"
                          "                norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.max_grad_norm)\n"
                          "            else:\n"
                          "                norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=float('inf'))\n"
                          "            self.optimizer.step()\n"
                          "            self.history[\"lr\"].append(float(lr))\n"
                          "            self.history[\"grad_norm\"].append(norm.item())\n"
                          "            if self.scheduler is not None:\n"
                          "                self.scheduler.step()\n"
                          "        bar.close()\n"
                          "        return total / count\n")],
                  EVAL: [('        return {"loss": total / samples, "accuracy": correct / labels}\n',
                          "        from collections import OrderedDict\n"
                          "        return OrderedDict(loss=np.float64(total) / samples, accuracy=np.float64(correct) / labels)\n")],
                  FIT: [(RECORD,
                         '            self.history["train_loss"].append(float(train_loss))\n'
                         '            self.history["val_loss"].append(float(scores["loss"]))\n'
                         '            self.history["val_accuracy"].append(float(scores["accuracy"]))\n'
                         "            self.epoch += 1\n")]}),
    Mutant("alt_noisy",
           "correct, and loud: logging to stderr every step and epoch, prints to stdout and stderr, a warning at "
           "every save, and a terminal tqdm bar per epoch nested inside fit's tqdm.auto bar",
           edits={STEP: [('        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False)\n',
                          "        import logging\n"
                          "        import sys\n"
                          "        from tqdm import tqdm as terminal_tqdm\n"
                          "        logging.basicConfig()\n"
                          '        logger = logging.getLogger("trainer")\n'
                          "        logger.setLevel(logging.INFO)\n"
                          '        bar = terminal_tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False)\n'),
                         (OPT_STEP, OPT_STEP + '            logger.warning("stepped on %d samples", n)\n'
                                               '            print("step", file=sys.stderr)\n'
                                               '            print(f"window of {len(window)} micro-batches stepped")\n')],
                  EVAL: [("        self.model.train(was_training)\n",
                          "        self.model.train(was_training)\n"
                          '        print(f"evaluated {samples} samples")\n')],
                  CKPT: [("        path = Path(path)\n",
                          "        import warnings\n"
                          '        warnings.warn(f"saving a checkpoint to {path}")\n'
                          "        path = Path(path)\n")],
                  FIT: [("        while self.epoch < epochs:\n",
                         "        import logging\n"
                         "        from tqdm.auto import tqdm as auto_tqdm\n"
                         '        epochs_bar = auto_tqdm(total=epochs, initial=self.epoch, desc="fit")\n'
                         "        while self.epoch < epochs:\n"),
                        ("            self.epoch += 1\n",
                         "            self.epoch += 1\n"
                         "            epochs_bar.update(1)\n"
                         '            logging.getLogger("trainer").info("epoch %d done", self.epoch)\n'),
                        (FIT_END, "        epochs_bar.close()\n" + FIT_END)]}),
]
