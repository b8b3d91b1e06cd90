"""The teacher an online-distillation run trained beside its student, as a checkpoint of its own.

BD-KD (Hu et al., ICASSP 2023) trains teacher and student together, so the teacher a BD-KD
student learnt from exists only inside the student's run: its checkpoint keeps the teacher's
weights beside the student's (``distill.teacher_state_dict``, saved at the same epoch). Written
out as a plain checkpoint, that teacher is evaluated, exported and shipped like any other model,
and the distillation table sets the student against the teacher it actually learnt from
(report.py matches them by the student's run, ``training.online_teacher_of``).
"""

import copy
from pathlib import Path

TEACHER_SUFFIX = "-teacher"


def teacher_run_dir(student_run_dir):
    """Where a study writes the online teacher of ``student_run_dir``: runs/<run>-teacher."""
    student_run_dir = Path(student_run_dir)
    return student_run_dir.with_name(student_run_dir.name + TEACHER_SUFFIX)


def online_teacher_checkpoint(checkpoint, out):
    """Write the online teacher kept in ``checkpoint`` (an online-distillation run's best.pt or
    last.pt) to ``out`` as a plain checkpoint that ``modrec evaluate`` and ``modrec export`` take.

    The teacher is the one saved with that checkpoint (the student's best epoch for best.pt). Its
    metadata says ``distillation`` ``none`` when it learnt from the labels alone (BD-KD's
    ``teacher_kd`` = 0, the default), else the method; ``training.online_teacher_of`` names the
    student's checkpoint, epoch and the teacher's validation accuracy at that epoch.

    Returns ``out``. Raises ValueError naming the file when it is not an online-distillation run
    (offline methods' teachers are checkpoints already), and UnsafeCheckpointError (a ValueError)
    for a file that holds more than tensors and plain values.
    """
    # torch only here: studies import this module for teacher_run_dir and stay torch-free until they train
    from .checkpoint import load_checkpoint, save_checkpoint
    from .flops import count_flops, count_params
    from .models import create_model

    checkpoint, out = Path(checkpoint), Path(out)
    ckpt = load_checkpoint(checkpoint)
    state = ckpt.get("distill") or {}
    teacher = state.get("teacher") or {}
    if not teacher.get("online") or "teacher_state_dict" not in state:
        method = (ckpt.get("training") or {}).get("distillation", "none")
        raise ValueError(f"{checkpoint}: not an online-distillation run (distillation {method!r}): only an online "
                         f"method (bdkd) trains its teacher beside the student; an offline method's teacher is the "
                         f"checkpoint its config names")
    model = create_model(teacher["model"], **teacher["model_cfg"])
    model.load_state_dict(state["teacher_state_dict"])
    frame_len = int(teacher["model_cfg"].get("frame_len", (ckpt.get("meta") or {}).get("frame_len", 128)))

    config = copy.deepcopy(ckpt.get("config") or {})
    config["experiment"] = f"{config.get('experiment', checkpoint.parent.name)}{TEACHER_SUFFIX}"
    config["model"] = {"name": teacher["model"], "cfg": dict(teacher["model_cfg"])}
    # the teacher's own loss took the student's outputs only through teacher_kd (bdkd.py)
    learnt_from_student = float((state.get("cfg") or {}).get("teacher_kd", 0.0)) > 0
    training = copy.deepcopy(ckpt.get("training") or {})
    training.update(config=config, distillation=state.get("method", "none") if learnt_from_student else "none")
    training.pop("distill", None)  # the student's teacher description; this file is that teacher
    rows = [r for r in ckpt.get("history") or [] if r.get("epoch") == ckpt.get("epoch")]
    teacher_val_acc = rows[-1].get("teacher_val_acc") if rows else None
    training["online_teacher_of"] = {"checkpoint": str(checkpoint), "epoch": ckpt.get("epoch"),
                                     "method": state.get("method"), "distill_cfg": dict(state.get("cfg") or {}),
                                     "student": ckpt.get("model_name"), "student_val_acc": ckpt.get("val_acc"),
                                     "teacher_val_acc": teacher_val_acc}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model_name=teacher["model"], model_cfg=dict(teacher["model_cfg"]),
                    state_dict=model.state_dict(), classes=ckpt.get("classes"), meta=ckpt.get("meta"), config=config,
                    training=training, epoch=ckpt.get("epoch"), val_acc=teacher_val_acc,
                    params=count_params(model), flops=count_flops(model.eval(), frame_len), pruning=None)
    return out
