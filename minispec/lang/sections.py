"""The data, loss and train sections -> the IR's DataSpec, Losses and Train."""

from __future__ import annotations

from minispec.data import DATASETS
from minispec.data import describe as describe_data
from minispec.errors import MinispecError, Span
from minispec.ir.model import DataSpec, Init, Loss, Optimizer, Schedule, TargetRef, Train
from minispec.lang import syntax as s
from minispec.lang.files import TRAIN_KEYS, Merged
from minispec.lang.values import Value, evaluate, nearest, typed

DEFAULT_BATCH = 100  # or the whole training set when it is smaller


def resolve_data(merged: Merged, env: dict[str, Value]) -> DataSpec:
    decl = merged.data
    if decl is None:
        raise MinispecError("the spec has no data section",
                            hint="add a line such as `data mnist_pairs(train=1000, test=1000)` or `data disk()`")
    source = decl.source
    if isinstance(source, s.Name):
        source = s.Call(source.name, (), (), source.span, source.span)
    if not isinstance(source, s.Call) or source.args:
        raise MinispecError("the data section names a data set with keyword options", decl.span,
                            hint="data mnist_pairs(train=1000, test=1000)")
    options = {k.name: evaluate(k.value, env) for k in source.keywords}
    try:
        inputs, targets, classes = describe_data(source.name, options)
    except MinispecError as error:
        span = source.name_span
        for keyword in source.keywords:
            if f"`{keyword.name}`" in error.message or keyword.name in error.message.split():
                span = keyword.span
        raise error.with_span(span) from None
    return DataSpec(name=source.name, options=options, inputs=inputs, targets=targets,
                    num_classes=classes, span=decl.span)


LOSS_KINDS = {"cross_entropy": "cross_entropy", "ce": "cross_entropy", "nll": "nll", "mse": "mse", "bce": "bce"}
ENCODINGS = ("index", "onehot", "pm1", "scalar")


def resolve_losses(merged: Merged, env: dict[str, Value], names: dict[str, str], data: DataSpec) -> list[Loss]:
    if merged.loss is None or not merged.loss.statements:
        raise MinispecError("the spec has no loss section", hint="add loss { out cross_entropy(target) }")
    losses = []
    for statement in merged.loss.statements:
        if statement.node not in names:
            raise MinispecError(f"the loss names `{statement.node}`, which is not a node of the net",
                                statement.node_span, hint=nearest(statement.node, names) or
                                "losses apply to names defined in the net section")
        call = statement.call
        kind = LOSS_KINDS.get(call.name)
        if kind is None:
            raise MinispecError(f"unknown loss `{call.name}`", call.name_span,
                                hint=nearest(call.name, LOSS_KINDS) or "losses: cross_entropy, nll, mse, bce")
        if len(call.args) != 1:
            raise MinispecError(f"{call.name} takes one target, e.g. {call.name}(target)", call.span)
        target, encoding = _target(call.args[0], data)
        threshold = None
        for keyword in call.keywords:
            if keyword.name != "threshold":
                raise MinispecError(f"{call.name} has no option `{keyword.name}`", keyword.span,
                                    hint="the only option is threshold=VALUE")
            threshold = typed(evaluate(keyword.value, env), float, "threshold", keyword.value.span)
        # scalar(t) written out on a target of more than two classes regresses the class index itself
        regress = encoding == "scalar" and kind == "mse" and data.num_classes[target.name] > 2
        if encoding is None:
            encoding = "index" if kind in ("cross_entropy", "nll") else "scalar"
        if kind in ("cross_entropy", "nll") and encoding != "index":
            raise MinispecError(f"{call.name} takes class indices, not a {encoding} target", call.args[0].span,
                                hint=f"write {call.name}({target})")
        if kind == "bce" and encoding != "scalar":
            raise MinispecError("bce takes 0/1 targets", call.args[0].span, hint=f"write bce({target})")
        if encoding in ("pm1", "scalar") and data.num_classes[target.name] != 2 and not regress:
            raise MinispecError(f"{call.name}({target}) compares a single output with a two-class target, but "
                                f"`{target}` has {data.num_classes[target.name]} classes", call.args[0].span,
                                hint=f"use {call.name}(onehot({target})) or cross_entropy({target}), or "
                                     f"mse(scalar({target})) to regress the class index")
        weight = 1.0
        if statement.weight is not None:
            weight = typed(evaluate(statement.weight, env), float, "a loss weight", statement.weight.span)
            if weight < 0:
                raise MinispecError(f"a loss weight must be zero or positive, got {weight}", statement.weight.span)
        if threshold is None:
            threshold = 0.0 if encoding == "pm1" else 0.5
        losses.append(Loss(
            node=names[statement.node], kind=kind, target=target, encoding=encoding,
            classes=data.num_classes[target.name], weight=weight,
            decision="argmax" if encoding in ("index", "onehot") else "nearest" if regress else "threshold",
            threshold=threshold, span=statement.span,
        ))
    return losses


def _target(expr: s.Expr, data: DataSpec) -> tuple[TargetRef, str | None]:
    encoding = None
    if isinstance(expr, s.Call):
        if expr.name not in ENCODINGS:
            raise MinispecError(f"unknown target encoding `{expr.name}`", expr.name_span,
                                hint=nearest(expr.name, ENCODINGS) or "encodings: index, onehot, pm1, scalar")
        if len(expr.args) != 1 or expr.keywords:
            raise MinispecError(f"{expr.name}(...) wraps one target, e.g. {expr.name}(target)", expr.span)
        encoding, expr = expr.name, expr.args[0]
    if isinstance(expr, s.Name):
        name, index, span = expr.name, None, expr.span
    elif isinstance(expr, s.Index):
        name, span = expr.name, expr.span
        index = typed(evaluate(expr.index, {}), int, "a target index", expr.index.span)
    else:
        raise MinispecError("expected a target such as `target` or `classes[0]`", expr.span)
    if name not in data.targets:
        raise MinispecError(f"`{name}` is not a target of data set {data.name}", span,
                            hint=nearest(name, data.targets) or f"its targets are {', '.join(data.targets)}")
    shape = data.targets[name]
    if index is None and shape:
        raise MinispecError(f"target `{name}` has shape {shape}; pick one column", span, hint=f"{name}[0]")
    if index is not None and (not shape or not 0 <= index < shape[0]):
        raise MinispecError(f"index {index} is out of range for target `{name}` of shape {shape}", span)
    return TargetRef(name=name, index=index), encoding


OPTIMIZERS = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
}
SCHEDULES = {"constant": {}, "step": {"every": 10.0, "gamma": 0.1}, "cosine": {"min_lr": 0.0}}
INITS = {"torch": {}, "zero": {}, "normal": {"std": 1.0}, "uniform": {"bound": 1.0}, "glorot": {}, "kaiming": {"gain": 2.0}}


def _named_call(expr: s.Expr, table: dict[str, dict], what: str, env) -> tuple[str, dict[str, float], Span]:
    """`adam(lr=1e-3)` or `cosine` against a table of names and default options."""
    if isinstance(expr, s.Name):
        expr = s.Call(expr.name, (), (), expr.span, expr.span)
    if not isinstance(expr, s.Call):
        raise MinispecError(f"expected {what} name, e.g. {next(iter(table))}", expr.span)
    if expr.name not in table:
        raise MinispecError(f"unknown {what} `{expr.name}`", expr.name_span,
                            hint=nearest(expr.name, table) or f"choose one of: {', '.join(table)}")
    if expr.args:
        raise MinispecError(f"{expr.name} takes keyword options", expr.args[0].span,
                            hint=f"{expr.name}({', '.join(f'{k}={v}' for k, v in table[expr.name].items())})")
    options = dict(table[expr.name])
    for keyword in expr.keywords:
        if keyword.name not in options:
            raise MinispecError(f"{expr.name} has no option `{keyword.name}`", keyword.span,
                                hint=nearest(keyword.name, options) or f"its options: {', '.join(options) or 'none'}")
        value = typed(evaluate(keyword.value, env), float, f"{expr.name}: `{keyword.name}`", keyword.value.span)
        if keyword.name in ("lr", "every", "eps", "std", "bound") and value <= 0:
            raise MinispecError(f"{expr.name}: `{keyword.name}` must be positive, got {value}", keyword.value.span)
        if value < 0:
            raise MinispecError(f"{expr.name}: `{keyword.name}` must be zero or positive, got {value}",
                                keyword.value.span)
        if keyword.name in ("momentum", "rho", "beta1", "beta2", "gamma") and value >= 1 and keyword.name != "gamma":
            raise MinispecError(f"{expr.name}: `{keyword.name}` must be below 1, got {value}", keyword.value.span)
        options[keyword.name] = value
    return expr.name, options, expr.span


def training_samples(data: DataSpec) -> int | None:
    """Training samples of the data set, when the spec fixes them."""
    size = data.options.get("train")
    if size is None:
        defaults = {o.name: o.default for o in DATASETS[data.name].options}
        size = defaults.get("train")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def resolve_train(merged: Merged, env: dict[str, Value], names: dict[str, str], losses: list[Loss],
           data: DataSpec) -> Train:
    settings = dict(merged.train)
    unknown = [k for k in settings if k not in TRAIN_KEYS]
    if unknown:
        statement = settings[unknown[0]]
        raise MinispecError(f"unknown train setting `{statement.key}`", statement.key_span,
                            hint=nearest(statement.key, TRAIN_KEYS) or f"settings: {', '.join(TRAIN_KEYS)}")

    def integer(key: str, default: int, minimum: int) -> int:
        if key not in settings:
            return default
        statement = settings[key]
        value = typed(evaluate(statement.value, env), int, key, statement.value.span)
        if value < minimum:
            raise MinispecError(f"{key} must be at least {minimum}, got {value}", statement.value.span)
        return value

    kind, options = "sgd", dict(OPTIMIZERS["sgd"])
    if "optimizer" in settings:
        kind, options, _ = _named_call(settings["optimizer"].value, OPTIMIZERS, "optimizer", env)
    if "lr" in settings:
        statement = settings["lr"]
        lr = typed(evaluate(statement.value, env), float, "lr", statement.value.span)
        if lr <= 0:
            raise MinispecError(f"lr must be positive, got {lr}", statement.value.span)
        options["lr"] = lr
    schedule = Schedule()
    if "schedule" in settings:
        name, schedule_options, _ = _named_call(settings["schedule"].value, SCHEDULES, "schedule", env)
        schedule = Schedule(kind=name, options=schedule_options)
    init = Init()
    if "init" in settings:
        name, init_options, _ = _named_call(settings["init"].value, INITS, "initialisation", env)
        init = Init(scheme=name, options=init_options)
    report = losses[0].node
    if "report" in settings:
        statement = settings["report"]
        with_loss = [name for name, node in names.items() if node in {loss.node for loss in losses}]
        if not isinstance(statement.value, s.Name) or statement.value.name not in names:
            wrong = statement.value.name if isinstance(statement.value, s.Name) else None
            raise MinispecError("report names a node of the net that has a loss", statement.value.span,
                                hint=(nearest(wrong, with_loss) if wrong else None)
                                or f"the nodes with a loss: {', '.join(with_loss)}")
        report = names[statement.value.name]
        if report not in [loss.node for loss in losses]:
            raise MinispecError(f"`{statement.value.name}` has no loss, so its error cannot be reported",
                                statement.value.span, hint=f"the nodes with a loss: {', '.join(with_loss)}")
    train_size = training_samples(data)
    batch = integer("batch", min(DEFAULT_BATCH, train_size or DEFAULT_BATCH), 1)
    if train_size is not None and batch > train_size:
        raise MinispecError(f"batch {batch} is larger than the {train_size} training samples",
                            settings["batch"].value.span,
                            hint=f"use batch {train_size} for full-batch gradient descent")
    per_epoch, eval_every = integer("evaluate", 1, 1), integer("eval_every", 1, 1)
    if per_epoch > 1 and eval_every > 1:
        raise MinispecError(f"evaluate {per_epoch} (points per epoch) and eval_every {eval_every} (epochs between "
                            "points) cannot both be set", settings["eval_every"].value.span,
                            hint="keep one: `evaluate` for several points per epoch, `eval_every` for long runs")
    return Train(
        optimizer=Optimizer(kind=kind, options=options),
        schedule=schedule,
        batch=batch,
        epochs=integer("epochs", 25, 1),
        trials=integer("trials", 10, 1),
        seed=integer("seed", 0, 0),
        evaluate=per_epoch,
        eval_every=eval_every,
        init=init,
        report=report,
    )
