package neuron

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/subnet"
)

// taskSource makes a validator's task for each round.
type taskSource interface {
	next(ctx context.Context) (subnet.Task, error)
}

// checkTaskConfig checks, before a validator starts, that cfg has what
// its tasks need (newTaskSource then only adds the library).
func checkTaskConfig(cfg ValidatorConfig) error {
	synapse := "text.generate"
	if cfg.Spec != nil {
		synapse = cfg.Spec.TaskSynapse()
	}
	switch synapse {
	case "text.generate":
		if len(cfg.Tasks) == 0 {
			return errors.New("neuron: validator config: text.generate tasks need Tasks")
		}
	case "storage.prove":
		if cfg.KnowledgeDir == "" || cfg.Swarm.Disabled {
			return errors.New("neuron: validator config: storage.prove challenges need a KnowledgeDir and the swarm")
		}
	case "compute.run":
		if _, err := cfg.Spec.Generator(); err != nil {
			return fmt.Errorf("neuron: validator config: %w", err)
		}
	default:
		return fmt.Errorf("neuron: validator config: no tasks for %q", synapse)
	}
	return nil
}

// newTaskSource makes the tasks cfg asks for: its spec's (storage
// challenges on lib's objects, compute jobs from the spec's generator), or
// questions from cfg.Tasks.
func newTaskSource(cfg ValidatorConfig, uid uint16, lib *knowledge.Library) (taskSource, error) {
	synapse := "text.generate"
	if cfg.Spec != nil {
		synapse = cfg.Spec.TaskSynapse()
	}
	switch synapse {
	case "text.generate":
		if len(cfg.Tasks) == 0 {
			return nil, errors.New("neuron: validator config: text.generate tasks need Tasks")
		}
		return &questions{tasks: cfg.Tasks, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(uid)))}, nil
	case "storage.prove":
		if lib == nil {
			return nil, errors.New("neuron: validator config: storage.prove challenges need a KnowledgeDir and the swarm")
		}
		return &challenges{lib: lib, netuid: cfg.Netuid, rng: secureRand()}, nil
	case "compute.run":
		g, err := cfg.Spec.Generator()
		if err != nil {
			return nil, fmt.Errorf("neuron: validator config: %w", err)
		}
		return &jobs{gen: g, rng: secureRand()}, nil
	}
	return nil, fmt.Errorf("neuron: validator config: no tasks for %q", synapse)
}

// secureRand is a random source miners cannot predict: challenges and
// jobs known ahead could be answered without holding the data or doing
// the work.
func secureRand() *rand.Rand {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

// questions are the validator's questions with known answers, asked at
// random (reproducibly, from ValidatorConfig.Seed).
type questions struct {
	tasks []Task
	rng   *rand.Rand
}

func (q *questions) next(context.Context) (subnet.Task, error) {
	return q.tasks[q.rng.IntN(len(q.tasks))].asTask(), nil
}

// challenges are storage challenges on a random byte range of a random
// object of the subnet in the validator's library, checked against its
// own copy.
type challenges struct {
	lib    *knowledge.Library
	netuid uint16
	rng    *rand.Rand
}

func (c *challenges) next(ctx context.Context) (subnet.Task, error) {
	entries, err := c.lib.List()
	if err != nil {
		return subnet.Task{}, fmt.Errorf("neuron: listing the library: %w", err)
	}
	var objs []*knowledge.Object
	for _, e := range entries {
		if o := e.Object; o != nil && o.Netuid == c.netuid && o.Size > 0 && o.Size <= subnet.MaxStorageObject {
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		return subnet.Task{}, fmt.Errorf("neuron: no knowledge objects of subnet %d to challenge", c.netuid)
	}
	o := objs[c.rng.IntN(len(objs))]
	ch, err := subnet.NewStorageChallenge(c.rng, o.CID, o.Size)
	if err != nil {
		return subnet.Task{}, err
	}
	data, err := c.lib.ReadRange(ctx, o.CID, ch.Offset, ch.Length)
	if err != nil {
		return subnet.Task{}, fmt.Errorf("neuron: reading the challenged range of %s: %w", o.CID, err)
	}
	return subnet.StorageTask(ch, data), nil
}

// jobs are compute jobs from a generator.
type jobs struct {
	gen *subnet.Generator
	rng *rand.Rand
}

func (j *jobs) next(context.Context) (subnet.Task, error) { return j.gen.Next(j.rng), nil }
