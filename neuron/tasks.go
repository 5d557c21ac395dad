package neuron

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/cybertensor/cybertensor/hook"
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
// challenges on the objects of the library lib returns once open, compute
// jobs from the spec's generator), or questions from cfg.Tasks.
func newTaskSource(cfg ValidatorConfig, uid uint16, lib func() *knowledge.Library) (taskSource, error) {
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
		if cfg.KnowledgeDir == "" || cfg.Swarm.Disabled {
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
	lib    func() *knowledge.Library
	netuid uint16
	rng    *rand.Rand
}

func (c *challenges) next(ctx context.Context) (subnet.Task, error) {
	lib := c.lib()
	if lib == nil {
		return subnet.Task{}, errors.New("neuron: the knowledge library is not open yet")
	}
	entries, err := lib.List()
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
	data, err := lib.ReadRange(ctx, o.CID, ch.Offset, ch.Length)
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

// taskBuffer bounds the tasks a v2 task source holds: what one run of a
// task program or one GET of a task endpoint may give.
const taskBuffer = 4096

// maxRefills bounds the runs (or GETs) one round makes of a task source
// that gives too few tasks for its miners.
const maxRefills = 8

// errTaskSource is wrapped by a v2 task source's failure: its program or
// endpoint failed, or gave no valid tasks. The round is skipped (nobody is
// scored) and the failure counted.
var errTaskSource = errors.New("task source failed")

// lineTasks makes tasks for syn from task lines fetched by fetch (a task
// program's output, a task endpoint's reply), a buffer of them at a time,
// refilled when it runs out. A fetch that fails, or gives a line that is
// not a task for syn, gives no tasks: the batch is refused whole.
type lineTasks struct {
	what  string // "task program sn1/main/tasks", for errors
	syn   *subnet.Synapse
	fetch func(ctx context.Context) ([]byte, error)
	buf   []subnet.Task
	runs  int // fetches this round; reset by newRound
}

func (l *lineTasks) newRound() { l.runs = 0 }

func (l *lineTasks) next(ctx context.Context) (subnet.Task, error) {
	if len(l.buf) == 0 {
		if l.runs >= maxRefills {
			return subnet.Task{}, fmt.Errorf("%w: %s gave fewer tasks than the round needs in %d runs", errTaskSource, l.what, maxRefills)
		}
		l.runs++
		out, err := l.fetch(ctx)
		if err != nil {
			return subnet.Task{}, fmt.Errorf("%w: %s: %w", errTaskSource, l.what, err)
		}
		tasks, err := tasksFromLines(l.syn, out, taskBuffer)
		if err != nil {
			return subnet.Task{}, fmt.Errorf("%w: %s: %w", errTaskSource, l.what, err)
		}
		l.buf = tasks
	}
	t := l.buf[0]
	l.buf = l.buf[1:]
	return t, nil
}

// tasksFromLines parses task lines (JSON lines or a JSON array) for syn:
// at most max, every one valid for the synapse, or an error naming the
// first that is not.
func tasksFromLines(syn *subnet.Synapse, data []byte, max int) ([]subnet.Task, error) {
	lines, err := subnet.ParseTaskLines(bytes.NewReader(data), max)
	if err != nil {
		return nil, err
	}
	tasks := make([]subnet.Task, len(lines))
	for i, l := range lines {
		if tasks[i], err = syn.TaskFromLine(l); err != nil {
			return nil, fmt.Errorf("task %d: %w", i+1, err)
		}
	}
	return tasks, nil
}

// execTasks runs a task program to its end, sandboxed, for each batch.
func execTasks(cfg hook.ExecConfig, syn *subnet.Synapse) *lineTasks {
	return &lineTasks{what: "task program " + cfg.Name, syn: syn, fetch: func(ctx context.Context) ([]byte, error) {
		lines, err := hook.Run(ctx, cfg, nil, taskBuffer)
		if err != nil {
			return nil, err
		}
		return bytes.Join(lines, []byte{'\n'}), nil
	}}
}

// httpTasks GETs a task endpoint for each batch; Close closes the hook.
type httpTasks struct {
	*lineTasks
	h *hook.HTTP
}

func newHTTPTasks(cfg hook.HTTPConfig, syn *subnet.Synapse) (*httpTasks, error) {
	h, err := hook.NewHTTP(cfg)
	if err != nil {
		return nil, err
	}
	return &httpTasks{lineTasks: &lineTasks{what: "task endpoint " + cfg.Name, syn: syn, fetch: h.Get}, h: h}, nil
}

func (t *httpTasks) Close() error { return t.h.Close() }

// datasetTasks are a v2 dataset's tasks, asked at random (reproducibly,
// from ValidatorConfig.Seed). A dataset by CID is fetched from the
// knowledge library (or through it, the swarm) on first use, verified
// block by block against its CID, at most subnet.MaxTaskLinesBytes.
type datasetTasks struct {
	syn   *subnet.Synapse
	cid   string
	lib   func() *knowledge.Library
	rng   *rand.Rand
	tasks []subnet.Task
}

func (d *datasetTasks) next(ctx context.Context) (subnet.Task, error) {
	if d.tasks == nil {
		if err := d.fetch(ctx); err != nil {
			return subnet.Task{}, err
		}
	}
	return d.tasks[d.rng.IntN(len(d.tasks))], nil
}

// fetch reads the dataset by its CID.
func (d *datasetTasks) fetch(ctx context.Context) error {
	lib := d.lib()
	if lib == nil {
		return fmt.Errorf("%w: the dataset %s needs the knowledge library, which is not open", errTaskSource, d.cid)
	}
	c, err := knowledge.ParseCID(d.cid)
	if err != nil {
		return fmt.Errorf("%w: dataset cid: %w", errTaskSource, err)
	}
	w := &boundedBuffer{max: subnet.MaxTaskLinesBytes}
	if _, err := lib.Get(ctx, c, w); err != nil {
		return fmt.Errorf("%w: dataset %s: %w", errTaskSource, d.cid, err)
	}
	tasks, err := tasksFromLines(d.syn, w.b.Bytes(), subnet.MaxTaskLines)
	if err != nil {
		return fmt.Errorf("%w: dataset %s: %w", errTaskSource, d.cid, err)
	}
	d.tasks = tasks
	return nil
}

// boundedBuffer is a buffer that refuses to grow past max bytes.
type boundedBuffer struct {
	b   bytes.Buffer
	max int
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, fmt.Errorf("more than %d bytes", w.max)
	}
	return w.b.Write(p)
}
