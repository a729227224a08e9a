"""CartPole with reward drift (protocol experiment 6): REINFORCE with a learned baseline.

Environment. Gymnasium's ``CartPole-v1`` (``env_id``): +1 reward per step, at most 500 steps, so
the unscaled episodic return lies in [1, 500] (solved at 475). Every episode resets its
environment with its own seed: training seeds from the run's ``order`` stream, evaluation seeds
from the ``data`` stream (drawn once, the same episodes at every evaluation).

Algorithm (REINFORCE with a learned baseline, cleanrl-style, all in this file). One optimizer
step = ``batch_size`` complete episodes (E) run with the current policy:

1. :meth:`train_batches` yields, per step, the E environment seeds (a tensor: cheap, and fixed by
   the seed alone). Lightning may fetch a batch before the previous step has run, so the
   rollout must not happen there: it would use a policy one step old.
2. :meth:`loss` rolls the E episodes out in lockstep (one batched policy forward per time step
   over the episodes still running) under ``no_grad``, sampling actions from the ``noise``
   stream; the rewards the agent sees are ``scale * r + shift`` of the active drift phase.
3. It computes the discounted returns-to-go G_t (``gamma``; the 500-step time limit ends the
   return without bootstrapping, as in cleanrl's REINFORCE), recomputes the log-probabilities
   and values of all visited states in one batched forward with gradients, and returns

       loss = -mean_t[log pi(a_t|s_t) (G_t - V(s_t))]          (policy gradient, baseline V)
              + vf_coef * mean_t[(V(s_t) - G_t)^2] / value_scale^2      (baseline regression)
              - ent_coef * mean_t[entropy(pi(.|s_t))]

   averaged over every time step of the E episodes. The critic's output is multiplied by the
   fixed ``value_scale`` (~1 / (1 - gamma), the size of a return) so a small-init network can
   reach the returns; the value loss is measured in those units. Advantages are **not**
   normalised and nothing adapts to the reward scale: a drift x c multiplies the policy
   gradient by c, which is the disturbance the experiment puts in front of AE's gauge law
   (whose gamma = alpha ||P g|| moves with it for the SGD family; Adam's preconditioner divides
   the scale out, so there the gauge has nothing to do).

4. The *value* of the returned loss (what the harness logs as ``train_loss`` and what AE's
   signals read) is chosen by ``ae_loss``; its *gradient* is always the objective above
   (``signal + (objective - objective.detach())``):

   ``shortfall`` (default)  ``1 - R / R_max``, the step's mean seen return R relative to its
                            ceiling ``R_max = max_episode_steps * (scale + shift)`` (CartPole
                            pays +1 a step, so this equals ``1 - return_unscaled / 500``): in
                            [0, 1), falls as the policy improves, never changes sign;
   ``critic``               the baseline's regression loss ``mean((V - G)^2) / value_scale^2``
                            (>= 0, in the seen reward's units: a rescale x c moves it ~c^2);
   ``surrogate``            the objective itself, the policy-gradient surrogate: its sign
                            flips with the advantages (AE's relative signals then read noise;
                            in the first evidence run AE drove lr to its floor in every seed).

Oracle (``oracle: true``, a baseline that knows the drift): the objective's gradient is divided
by the active phase's reward gain ``scale + shift`` (the factor a phase puts on the returns of a
+1-a-step task), switching at exactly the drift steps. For SGD and SGD with momentum (no weight
decay) this is the schedule ``lr_t = lr / (scale_t + shift_t)``, except that the momentum
buffer's old-phase gradients are not rescaled at a switch; it undoes the rescale drifts and
does nothing for the dynamics drifts (below). The logged loss value is not divided.

Model: separate actor and critic MLPs (obs -> hidden -> hidden -> actions / 1, tanh), one module
so that one optimizer trains both; the critic's last layer starts at zero (V = 0).

Drift. The world follows a list of phases ``drift.phases`` = [{scale, shift, length,
force_mag, gravity}, ...]; the phase moves on every ``drift.every_episodes`` training episodes
(per scale: ``smoke``, ``cpu``, ``paper``, picked by ``run_scale``) and cycles through the list.
Two kinds of drift:

* *reward* (``scale``, ``shift``; defaults 1, 0): the agent sees ``scale * r + shift``. The
  optimal policy is unchanged (CartPole pays for every step survived, whatever the gain); only
  the gradient's scale moves.
* *dynamics* (``length``: the pole's half-length, default 0.5; ``force_mag``: the push, default
  10, negative = the actions' directions swapped; ``gravity``: default 9.8; null = the
  environment's own): the physics changes, and with it the optimal policy: the optimum moves,
  as with the corruptions and class shifts of experiments 4 and 5. The evaluation runs in the
  active phase's physics. A policy trained to 500 on the default physics still scored 492-500
  with the pole half as long or twice as long, the push halved or at 0.3x, or gravity doubled
  (SGD and SGDm, seed 0, 10 evaluation episodes): those move the optimum too little to need a
  recovery. ``force_mag: -10`` (push reversed) makes the learned policy's every action the
  wrong one: the drift the YAML uses.
 ``every_episodes`` must be a
multiple of E so that the episodes of one step share a phase. :meth:`drift_phase` returns the
running number of the phase (0, 1, 2, ...; the reward transform is
``phases[number % len(phases)]``), ``None`` when the list has one entry (no drift). The phase
at step s is that of the episodes behind step s.

AE's reward (:meth:`reward`): the mean episodic return *as the agent sees it* (sum of the
transformed rewards) over the step's E episodes. That is the reward signal of the learning
system: AE's R sees the jump at a rescale like the gradient does. ``train_log`` records the
unscaled return beside it, so the analysis never confuses the two:

``return_unscaled``  mean episodic return of the step's episodes in CartPole's own reward
``return_seen``      the same episodes' mean return under the drifted reward (AE's R input)
``reward_scale``     c of the active phase;  ``reward_shift``: b of the active phase
``pole_length``, ``force_mag``, ``gravity``   the active phase's physics
``episodes``         training episodes so far (E per optimizer step)
``shortfall``, ``critic_loss``, ``surrogate``   the three loss readings of item 4 (one is the
                     logged ``train_loss``)

Determinism: a run is bitwise reproducible on the same machine and build (same torch,
gymnasium and numpy builds, same thread count); across machines the floating-point reductions
can differ and RL amplifies the difference (the same seed's final return was 159.3 on one
machine and 449.7 on another).

Metric: :meth:`evaluate` is the mean unscaled return over ``eval_episodes`` evaluation episodes
(seeded, so deterministic given the run seed and the weights) of the greedy policy (argmax;
``eval_policy: sample`` samples from a generator re-seeded at every evaluation). Higher is
better; the target (475) is CartPole's "solved" level.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from omegaconf import MISSING
from torch import nn

from aebench.task import ConfigError, Task

SCALES = ("smoke", "cpu", "paper")
EVAL_POLICIES = ("greedy", "sample")
AE_LOSSES = ("shortfall", "critic", "surrogate")
#: the physics a dynamics drift may set, phase key -> CartPoleEnv attribute
PHYSICS = {"length": "length", "force_mag": "force_mag", "gravity": "gravity"}


@dataclass
class RewardPhase:
    """One drift phase (the shape of an entry of ``drift.phases``): the agent sees ``scale * r +
    shift``; ``length``, ``force_mag``, ``gravity`` (null: unchanged) set CartPole's physics."""

    scale: float = 1.0
    shift: float = 0.0
    length: float | None = None
    force_mag: float | None = None
    gravity: float | None = None


@dataclass
class EpisodesPerScale:
    """Training episodes a phase lasts, per scale (``drift.every_episodes.<scale>``)."""

    smoke: int = MISSING
    cpu: int = MISSING
    paper: int = MISSING


@dataclass
class RewardDrift:
    """The shape of ``drift``: the config schema reads it from here (aebench.schema); the
    constructor receives it as a plain dict."""

    every_episodes: EpisodesPerScale = field(default_factory=EpisodesPerScale)
    phases: list[RewardPhase] = field(default_factory=lambda: [RewardPhase()])


def set_physics(env: gym.Env, physics: dict[str, float]) -> None:
    """Set a CartPole environment's physics (``PHYSICS`` keys; derived quantities follow)."""
    u = env.unwrapped
    for key, value in physics.items():
        setattr(u, PHYSICS[key], float(value))
    if hasattr(u, "polemass_length"):
        u.polemass_length = u.masspole * u.length


def tanh_mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.actor = tanh_mlp([obs_dim, hidden, hidden, n_actions])
        self.critic = tanh_mlp([obs_dim, hidden, hidden, 1])
        # V = 0 at the start: the first loss is then the plain REINFORCE loss of returns > 0,
        # a stable reference for the divergence rule (aebench.recorder), not a random offset
        nn.init.zeros_(self.critic[-1].weight)
        nn.init.zeros_(self.critic[-1].bias)


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns-to-go G_t = sum_{u >= t} gamma^(u-t) r_u of one episode."""
    out = np.empty(rewards.shape[0], dtype=np.float64)
    running = 0.0
    for t, r in zip(range(rewards.shape[0] - 1, -1, -1), rewards.tolist()[::-1], strict=True):
        running = r + gamma * running
        out[t] = running
    return torch.from_numpy(out).float()


class CartPoleDriftTask(Task):
    metric_name = "return"
    metric_mode = "max"
    #: CartPole-v1 itself, the environment the protocol names (no stand-in, nothing to download)
    data_source = "real"

    def __init__(
        self,
        seed: int,
        batch_size: int = 8,
        loss_scale: float = 1.0,
        run_scale: str = "cpu",
        env_id: str = "CartPole-v1",
        hidden: int = 64,
        gamma: float = 0.99,
        value_scale: float = 100.0,
        vf_coef: float = 0.5,
        ent_coef: float = 0.0,
        eval_episodes: int = 10,
        eval_policy: str = "greedy",
        ae_loss: str = "shortfall",
        oracle: bool = False,
        drift: RewardDrift | None = None,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        if run_scale not in SCALES:
            raise ConfigError(f"task.run_scale={run_scale}: must be one of {', '.join(SCALES)}")
        if eval_policy not in EVAL_POLICIES:
            raise ConfigError(
                f"task.eval_policy={eval_policy}: must be one of {', '.join(EVAL_POLICIES)}"
            )
        if ae_loss not in AE_LOSSES:
            raise ConfigError(f"task.ae_loss={ae_loss}: must be one of {', '.join(AE_LOSSES)}")
        if not 0 <= gamma <= 1:
            raise ConfigError(f"task.gamma={gamma}: must be in [0, 1]")
        for key, value in (("hidden", hidden), ("eval_episodes", eval_episodes)):
            if value < 1:
                raise ConfigError(f"task.{key}={value}: must be a positive integer")
        if not value_scale > 0:
            raise ConfigError(f"task.value_scale={value_scale}: must be a positive number")
        for key, value in (("vf_coef", vf_coef), ("ent_coef", ent_coef)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"task.{key}={value}: must be a non-negative number")
        if batch_size < 1:
            raise ConfigError(f"task.batch_size={batch_size}: must be a positive integer")
        if drift is None:  # no drift: one phase with the environment's own reward
            drift = {"every_episodes": {run_scale: batch_size}, "phases": [{}]}
        if drift["every_episodes"].get(run_scale) is None:
            raise ConfigError(f"task.drift.every_episodes.{run_scale}: missing (episodes a phase)")
        every = int(drift["every_episodes"][run_scale])
        if every < 1 or every % batch_size:
            raise ConfigError(
                f"task.drift.every_episodes.{run_scale}={every}: must be a positive multiple of "
                f"task.batch_size={batch_size} (episodes per step)"
            )
        if not drift["phases"]:
            raise ConfigError("task.drift.phases=[]: give at least one phase")
        phases, physics = [], []
        for i, p in enumerate(drift["phases"]):
            c = float(1.0 if p.get("scale") is None else p["scale"])
            b = float(0.0 if p.get("shift") is None else p["shift"])
            if not (math.isfinite(c) and c > 0 and math.isfinite(b) and c + b > 0):
                raise ConfigError(
                    f"task.drift.phases[{i}]={{scale: {c}, shift: {b}}}: scale must be a "
                    "positive number, shift finite and scale + shift > 0"
                )
            phys = {k: float(p[k]) for k in PHYSICS if p.get(k) is not None}
            for k, v in phys.items():
                if not (math.isfinite(v) and (v > 0 or (k == "force_mag" and v < 0))):
                    allowed = "a non-zero number" if k == "force_mag" else "a positive number"
                    raise ConfigError(f"task.drift.phases[{i}].{k}={v}: must be {allowed}")
            phases.append((c, b))
            physics.append(phys)
        self.env_id, self.hidden, self.gamma = env_id, hidden, gamma
        self.value_scale, self.vf_coef, self.ent_coef = value_scale, vf_coef, ent_coef
        self.eval_policy, self.ae_loss, self.oracle = eval_policy, ae_loss, bool(oracle)
        self.every_episodes, self.phases = every, phases
        try:
            probe = gym.make(env_id)
        except gym.error.Error as err:
            raise ConfigError(
                f"task.env_id={env_id}: not a gymnasium environment ({err})"
            ) from None
        if not isinstance(probe.action_space, gym.spaces.Discrete):
            raise ConfigError(f"task.env_id={env_id}: needs a discrete action space")
        if any(physics) and not hasattr(probe.unwrapped, "polemass_length"):
            raise ConfigError(
                f"task.drift.phases: length/force_mag/gravity need a CartPole environment, "
                f"not task.env_id={env_id}"
            )
        # the physics of every phase: the environment's own values where a phase leaves them
        own = (
            {k: float(getattr(probe.unwrapped, a)) for k, a in PHYSICS.items()}
            if any(physics)
            else {}
        )
        self.physics = [{**own, **p} for p in physics]
        limit = probe.spec.max_episode_steps if probe.spec is not None else None
        self.max_steps = int(limit) if limit else 500
        self.obs_dim = int(np.prod(probe.observation_space.shape))
        self.n_actions = int(probe.action_space.n)
        self.envs: list[gym.Env] = [probe]
        self.eval_seeds = torch.randint(0, 2**31 - 1, (eval_episodes,), generator=self.rng("data"))
        self.action_gen = self.rng("noise")
        self.episodes = 0
        self.last: dict[str, float] = {}

    # ------------------------------------------------------------------ drift
    def phase_number(self, episode: int) -> int:
        return episode // self.every_episodes

    def reward_transform(self, episode: int) -> tuple[float, float]:
        """``(scale, shift)`` of the phase that training episode ``episode`` (0-based) is in."""
        return self.phases[self.phase_number(episode) % len(self.phases)]

    def drift_phase(self, step: int) -> int | None:
        if len(self.phases) == 1:  # one phase, whatever its reward or physics: stationary
            return None
        # the episodes behind step s (1-based) are (s-1)E ... sE-1; step 0 is before training
        return self.phase_number(max(step - 1, 0) * self.batch_size)

    # ------------------------------------------------------------------ rollouts
    def physics_of(self, episode: int) -> dict[str, float]:
        """The physics of the phase training episode ``episode`` is in (empty: unchanged)."""
        return self.physics[self.phase_number(episode) % len(self.phases)]

    def _env_pool(self, n: int, physics: dict[str, float] | None = None) -> list[gym.Env]:
        while len(self.envs) < n:
            self.envs.append(gym.make(self.env_id))
        if physics:
            for env in self.envs[:n]:
                set_physics(env, physics)
        return self.envs[:n]

    @torch.no_grad()
    def rollout(
        self,
        model: ActorCritic,
        seeds: torch.Tensor,
        gen: torch.Generator | None,
        physics: dict[str, float] | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Run one episode per seed in lockstep; ``gen`` samples actions, ``None`` is greedy;
        ``physics`` sets the environments' physics first (a dynamics phase).

        Returns, per episode, its observations (T x obs_dim), actions (T) and rewards (T) in the
        environment's own (unscaled) reward.
        """
        envs = self._env_pool(len(seeds), physics)
        device = next(model.parameters()).device
        obs = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds.tolist(), strict=True)]
        trajectories: list[tuple[list, list, list]] = [([], [], []) for _ in envs]
        running = list(range(len(envs)))
        while running:
            batch = torch.as_tensor(np.stack([obs[i] for i in running]), dtype=torch.float32)
            # a diverged policy (non-finite weights) still acts, so that its loss (non-finite
            # too) reaches the recorder, which stops the run as diverged instead of crashing
            logits = torch.nan_to_num(model.actor(batch.to(device)).cpu(), 0.0, 0.0, 0.0)
            if gen is None:
                actions = logits.argmax(-1).tolist()
            else:
                probs = torch.softmax(logits, -1)
                actions = torch.multinomial(probs, 1, generator=gen)[:, 0].tolist()
            still = []
            for j, i in enumerate(running):
                a = actions[j]
                trajectories[i][0].append(obs[i])
                trajectories[i][1].append(a)
                obs[i], r, terminated, truncated, _ = envs[i].step(a)
                self.env_steps += 1  # training and ES rollouts (evaluate() restores its own)
                trajectories[i][2].append(float(r))
                if not (terminated or truncated):
                    still.append(i)
            running = still
        return [
            (
                torch.as_tensor(np.stack(o), dtype=torch.float32),
                torch.tensor(a, dtype=torch.int64),
                torch.tensor(r, dtype=torch.float32),
            )
            for o, a, r in trajectories
        ]

    # ------------------------------------------------------------------ the Task interface
    def build_model(self) -> nn.Module:
        self.episodes, self.last = 0, {}
        return ActorCritic(self.obs_dim, self.n_actions, self.hidden)

    def es_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The actor only: the ES fitness (greedy returns) never reads the critic."""
        return list(model.actor.parameters())

    def train_batches(self) -> Iterator[torch.Tensor]:
        g = self.rng("order")
        while True:
            yield torch.randint(0, 2**31 - 1, (self.batch_size,), generator=g)

    def _phase_log(self, scale: float, shift: float, physics: dict[str, float]) -> dict:
        out = {"reward_scale": scale, "reward_shift": shift, "episodes": float(self.episodes)}
        if physics:
            out.update(pole_length=physics["length"], force_mag=physics["force_mag"],
                       gravity=physics["gravity"])  # fmt: skip
        return out

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        scale, shift = self.reward_transform(self.episodes)
        physics = self.physics_of(self.episodes)
        episodes = self.rollout(model, batch, self.action_gen, physics)
        self.episodes += len(episodes)
        device = next(model.parameters()).device
        obs = torch.cat([o for o, _, _ in episodes]).to(device)
        actions = torch.cat([a for _, a, _ in episodes]).to(device)
        seen = [scale * r + shift for _, _, r in episodes]
        returns = torch.cat([discounted_returns(r, self.gamma) for r in seen]).to(device)

        logp_all = torch.log_softmax(model.actor(obs), -1)
        logp = logp_all.gather(1, actions[:, None])[:, 0]
        value = model.critic(obs)[:, 0] * self.value_scale
        advantage = (returns - value).detach()
        policy_loss = -(logp * advantage).mean()
        value_loss = ((value - returns) / self.value_scale).pow(2).mean()
        entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
        objective = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy
        return_seen = float(np.mean([float(r.sum()) for r in seen]))
        readings = {
            "shortfall": 1.0 - return_seen / (self.max_steps * (scale + shift)),
            "critic_loss": float(value_loss.detach()),
            "surrogate": float(objective.detach()),
        }
        self.last = {
            "return_unscaled": float(np.mean([float(r.sum()) for _, _, r in episodes])),
            "return_seen": return_seen,
            **self._phase_log(scale, shift, physics),
            **readings,
        }
        if self.oracle:  # knows the phase's reward gain: the schedule lr / (scale + shift)
            objective = objective / (scale + shift)
        signal = {"shortfall": readings["shortfall"], "critic": readings["critic_loss"],
                  "surrogate": float(objective.detach())}[self.ae_loss]  # fmt: skip
        # the value AE and the recorder read; the gradient of the objective (module doc, item 4)
        return objective + (signal - objective.detach())

    @torch.no_grad()
    def fitness(self, model: nn.Module, batch: torch.Tensor, center: bool = False) -> torch.Tensor:
        """For Evolution Strategies: the mean return, as the agent sees it under the active drift
        phase, of the step's ``batch_size`` episodes (the batch's environment seeds, the same for
        every member: common random numbers) run with the *greedy* policy, so a member's fitness
        depends on its parameters alone (the ES literature's deterministic policies). The critic
        plays no part. The centre call (``center=True``) advances the episode count by
        ``batch_size``, as a gradient step does, so drift phases switch at the same steps in ES
        and gradient runs, and fills :meth:`reward` and :meth:`train_log` from its episodes;
        ES generations run ``population + 1`` times as many episodes as that count says.
        """
        scale, shift = self.reward_transform(self.episodes)
        physics = self.physics_of(self.episodes)
        episodes = self.rollout(model, batch, None, physics)
        seen = [float(r.sum()) * scale + shift * len(r) for _, _, r in episodes]
        if center:
            self.episodes += len(episodes)
            self.last = {
                "return_unscaled": float(np.mean([float(r.sum()) for _, _, r in episodes])),
                "return_seen": float(np.mean(seen)),
                **self._phase_log(scale, shift, physics),
            }
        return torch.tensor(float(np.mean(seen)))

    def reward(self) -> float | None:
        return self.last.get("return_seen")

    def train_log(self) -> dict[str, float]:
        return dict(self.last)

    def evaluate(self, model: nn.Module) -> float:
        gen = None if self.eval_policy == "greedy" else self.rng("noise/eval")
        # the physics of the phase the last trained episodes were in
        physics = self.physics_of(max(self.episodes - 1, 0))
        spent = self.env_steps
        episodes = self.rollout(model, self.eval_seeds, gen, physics)
        self.env_steps = spent  # evaluation is not training compute
        return float(np.mean([float(r.sum()) for _, _, r in episodes]))
