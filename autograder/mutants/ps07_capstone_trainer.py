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
    + COUNTED + CLIP + OPT_STEP + SCHED_STEP +
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
    Mutant("no_zero_grad", "optimizer.zero_grad() left out: gradients pile up across windows",
           edits={STEP: [(ZERO_GRAD, "")]},
           fails={"audit_zero_grad": "still held an earlier gradient", "audit_accumulation": "previous window",
                  "test_fit": "should fall", "audit_resume_equality": "gradients carried",
                  "audit_milestone": "token accuracy"}),
    Mutant("zero_grad_every_micro_batch", "optimizer.zero_grad() inside the micro-batch loop",
           edits={STEP: [(ZERO_GRAD, ""), (MICRO_LOOP, MICRO_LOOP + "    " + ZERO_GRAD)]},
           fails={"test_train_epoch": "should train exactly like", "audit_zero_grad": "inside the micro-batch loop",
                  "audit_accumulation": "only the last micro-batch", "audit_clipping": "fix that first"}),
    Mutant("loss_not_scaled", "backward() on each unscaled micro-batch loss: the window's gradient is a sum",
           edits={STEP: [(SCALED_BACKWARD, "loss.backward()")]},
           fails={"test_train_epoch": "should train exactly like", "audit_accumulation": "too large"}),
    Mutant("divide_by_accum_steps", "each loss divided by accum_steps: wrong for a short window or micro-batch",
           edits={STEP: [(SCALED_BACKWARD, "(loss / self.accum_steps).backward()")]},
           fails={"audit_accumulation": "divided by accum_steps"}),
    Mutant("leftover_window_dropped", "a last window shorter than accum_steps is skipped",
           edits={STEP: [("            n = sum(", "            if len(window) < self.accum_steps:\n"
                                                 "                break\n            n = sum(")]},
           fails={"audit_zero_grad": "backward() reached the loss", "audit_accumulation": "leftover window was dropped"}),
    Mutant("scheduler_every_micro_batch", "scheduler.step() after every micro-batch instead of every optimizer step",
           edits={STEP: [(SCHED_STEP, ""), (COUNTED, COUNTED + "    " + SCHED_STEP.replace("\n    ", "\n        "))]},
           fails={"test_train_epoch": "StepLR", "audit_lr_schedule": "once per micro-batch",
                  "test_cnn_milestone": "Tried to step", "test_transformer_milestone": "Tried to step",
                  "audit_milestone": "Tried to step"}),
    Mutant("scheduler_before_optimizer", "scheduler.step() before optimizer.step(): every LR one step early",
           edits={STEP: [(OPT_STEP + SCHED_STEP, SCHED_STEP + OPT_STEP)]},
           fails={"audit_lr_schedule": "before optimizer.step()"}),
    Mutant("clip_every_micro_batch", "the gradient clipped after each micro-batch's backward, inside the window",
           edits={STEP: [(CLIP, ""), (COUNTED, COUNTED + "    " + CLIP.replace("\n    ", "\n        "))]},
           fails={"audit_clipping": "inside the window"}),
    Mutant("clip_after_step", "clip_grad_norm_ after optimizer.step(): the step applies the unclipped gradient",
           edits={STEP: [(CLIP + OPT_STEP, OPT_STEP + CLIP)]},
           fails={"test_train_epoch": "move the weights by at most", "audit_clipping": "after the step"}),
    # Task 2: evaluate
    Mutant("no_eval_mode", "evaluate never calls model.eval(): Dropout and BatchNorm stay in train mode",
           edits={EVAL: [("        self.model.eval()\n", "")]},
           fails={"test_evaluate": "Dropout still drops", "audit_eval_mode": "Dropout was still dropping"}),
    Mutant("mode_not_restored", "evaluate leaves the model in eval mode",
           edits={EVAL: [("        self.model.train(was_training)\n", "")]},
           fails={"test_evaluate": "leave it in train mode", "audit_eval_mode": "left in eval mode"}),
    Mutant("accuracy_per_sequence", "accuracy divides the right tokens by the number of sequences",
           edits={EVAL: [('"accuracy": correct / labels', '"accuracy": correct / samples')]},
           fails={"test_evaluate": "yb.numel()", "audit_evaluate_values": "number of sequences",
                  "test_transformer_milestone": "above 100%"}),
    # Task 3: save and load
    Mutant("no_optimizer_state", "load restores everything but the optimizer (Adam's moments)",
           edits={CKPT: [('        self.optimizer.load_state_dict(state["optimizer"])\n', "")]},
           fails={"audit_resume_equality": "Adam's state"}),
    Mutant("no_scheduler_state", "load does not restore the scheduler",
           edits={CKPT: [('            self.scheduler.load_state_dict(state["scheduler"])\n', "            pass\n")]},
           fails={"audit_resume_equality": "scheduler's state"}),
    Mutant("no_torch_rng", "torch's RNG state is not restored: Dropout draws other masks",
           edits={CKPT: [('        torch.set_rng_state(state["torch_rng"])\n', "")]},
           fails={"audit_resume_equality": "torch RNG"}),
    Mutant("no_numpy_rng", "numpy's global RNG is not restored: other augmentation",
           edits={CKPT: [("        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n",
                          "")]},
           fails={"audit_resume_equality": "numpy's global RNG"}),
    Mutant("no_python_rng", "Python's random is not restored",
           edits={CKPT: [('        random.setstate(state["python_rng"])\n', "")]},
           fails={"audit_resume_equality": "Python's random"}),
    Mutant("no_loader_generator", "the DataLoader's generator state is not kept: other shuffles after resuming",
           edits={CKPT: [(LOAD_BODY_END, "")]},
           fails={"audit_resume_equality": "DataLoader's generator"}),
    Mutant("numpy_state_as_array", "np.random.get_state() saved as is: torch.load(weights_only=True) refuses it",
           edits={CKPT: [('"numpy_rng": [kind, keys.tolist(), pos, has_gauss, cached]', '"numpy_rng": np.random.get_state()'),
                         ("        kind, keys, pos, has_gauss, cached = np.random.get_state()\n", ""),
                         ("        kind, keys, pos, has_gauss, cached = state[\"numpy_rng\"]\n"
                          "        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n",
                          '        np.random.set_state(state["numpy_rng"])\n')]},
           fails={"test_checkpoint": "weights_only=True", "audit_resume_equality": "Weights only load failed",
                  "audit_resume_latest": "Weights only load failed"}),
    Mutant("no_history_in_checkpoint", "the history is not restored: a resumed run forgets its first epochs",
           edits={CKPT: [('        self.epoch, self.history = state["epoch"], state["history"]\n',
                          '        self.epoch = state["epoch"]\n')]},
           fails={"test_checkpoint": "the history should be", "audit_resume_equality": "another history"}),
    # Task 4: fit
    Mutant("epochs_not_total", "fit trains `epochs` more epochs, whatever the Trainer has done already",
           edits={FIT: [("        while self.epoch < epochs:\n", "        for _ in range(epochs):\n")]},
           fails={"audit_resume_equality": "more epochs instead of", "audit_resume_latest": "epochs is the total"}),
    Mutant("no_resume", "fit ignores the checkpoints in ckpt_dir",
           edits={FIT: [("        if latest is not None:\n            self.load(latest)\n", "")]},
           fails={"audit_resume_latest": "did not resume"}),
    Mutant("checkpoint_before_validation", "the epoch's checkpoint is saved before evaluate and the history",
           edits={FIT: [(RECORD + SAVE_EPOCH, RECORD), (EPOCH_BODY, EPOCH_BODY.replace(
               "            scores", "            if self.ckpt_dir is not None:\n"
                                   "                self.save(checkpoint_path(self.ckpt_dir, self.epoch + 1))\n"
                                   "            scores"))]},
           fails={"audit_resume_latest": "before the epoch was complete"}),
    Mutant("validation_before_training", "each epoch evaluates first, then trains: the history lags an epoch",
           edits={FIT: [(EPOCH_BODY, "            scores = self.evaluate(val_loader)\n"
                                     "            train_loss = self.train_epoch(train_loader)\n")]},
           fails={"test_fit": "the trained model's validation loss", "audit_history": "after each epoch's training"}),
    Mutant("callbacks_before_recording", "the callbacks run before the epoch is counted and recorded",
           edits={FIT: [(RECORD + SAVE_EPOCH + CALLBACKS,
                         "            if any([callback(self) for callback in self.callbacks]):\n"
                         "                stop = True\n"
                         "            else:\n"
                         "                stop = False\n" + RECORD + SAVE_EPOCH +
                         "            if stop:\n                break\n")]},
           fails={"test_fit": "once after every epoch", "audit_history": "before calling the callbacks"}),
    Mutant("callback_stop_ignored", "a callback returning True does not stop fit",
           edits={FIT: [(CALLBACKS, "            for callback in self.callbacks:\n                callback(self)\n")]},
           fails={"audit_history": "any callback returns True"}),
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
                          "                if self.max_grad_norm is not None:\n"
                          "                    norm = torch.stack([g.norm() for g in grads]).norm()\n"
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
