package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// injector injects one fault at a time while a job runs and keeps a fault
// only as a hit when an effect of it was observed, from outside the
// services: a partition leased again (a failed attempt, a retry, a lease
// taken over after a kill), a warning or error the services logged about
// the job, a resume, or a failed client call.
type injector struct {
	t       *testing.T
	st      *stack
	pg      *cluster
	rng     *rand.Rand
	cfg     settings
	control string // the control database, not through its proxy

	mu         sync.Mutex
	job        string
	total      int            // faults injected while the job ran
	hits       int            // of which observed
	byKind     map[string]int // hits per kind
	tried      map[string]int // faults per kind
	resumes    int
	clientErrs int
	lastClient string
	log        []string
	err        error
	offsets    map[string]int64 // bytes of each service log already read
}

func (in *injector) startJob(id string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.job = id
	if in.offsets == nil {
		in.offsets = map[string]int64{}
	}
}

func (in *injector) resumed() {
	in.mu.Lock()
	in.resumes++
	in.mu.Unlock()
}

func (in *injector) clientError(err error) {
	in.mu.Lock()
	in.clientErrs++
	in.lastClient = err.Error()
	in.mu.Unlock()
}

// done: the hit budget is spent and every kind hit, or so many faults
// were tried that more would not help (the caller reports what missed).
func (in *injector) done() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.total >= 6*in.cfg.hits {
		return true
	}
	if in.hits < in.cfg.hits {
		return false
	}
	for _, k := range kinds {
		if in.byKind[k] == 0 {
			return false
		}
	}
	return true
}

// next picks a kind that has not hit yet, else any kind.
func (in *injector) next() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var cold []string
	for _, k := range kinds {
		if in.byKind[k] == 0 && in.tried[k] < 12 {
			cold = append(cold, k)
		}
	}
	if len(cold) > 0 {
		return cold[in.rng.IntN(len(cold))]
	}
	return kinds[in.rng.IntN(len(kinds))]
}

func (in *injector) sleep(stop chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (in *injector) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(in.rng.Int64N(int64(hi-lo)))
}

// effects is what can be seen of a job from outside at one moment.
type effects struct {
	attempts map[string]int // partition → times leased
	running  bool
	resumes  int
	client   int
}

func (in *injector) observe() (effects, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := effects{attempts: map[string]int{}}
	conn, err := pgx.Connect(ctx, in.control)
	if err != nil {
		return e, err
	}
	defer conn.Close(context.Background())
	in.mu.Lock()
	job := in.job
	e.resumes, e.client = in.resumes, in.clientErrs
	in.mu.Unlock()
	var state string
	if err := conn.QueryRow(ctx, `SELECT state FROM cutover_control.jobs WHERE id = $1`, job).Scan(&state); err != nil {
		return e, err
	}
	e.running = state == "running"
	rows, err := conn.Query(ctx, `SELECT id, attempts FROM cutover_control.partitions WHERE job_id = $1`, job)
	if err != nil {
		return e, err
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return e, err
		}
		e.attempts[id] = n
	}
	return e, rows.Err()
}

// newLogLines returns the warnings and errors the services logged since
// the last call that name the job (or are errors), as "service: msg …".
func (in *injector) newLogLines() []string {
	in.mu.Lock()
	job := in.job
	in.mu.Unlock()
	var out []string
	files, _ := filepath.Glob(filepath.Join(in.st.dir, "*.log"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		off := in.offsets[f]
		if _, err := fh.Seek(off, 0); err != nil {
			fh.Close()
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			off += int64(len(line)) + 1
			var rec map[string]any
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			level, _ := rec["level"].(string)
			if level != "WARN" && level != "ERROR" {
				continue
			}
			if rec["job"] != job && !strings.Contains(string(line), job) {
				continue
			}
			msg := fmt.Sprintf("%s: %v", strings.TrimSuffix(filepath.Base(f), ".log"), rec["msg"])
			if p, ok := rec["partition"]; ok {
				msg += fmt.Sprintf(" (partition %v)", p)
			}
			if e, ok := rec["err"].(string); ok {
				if len(e) > 140 {
					e = e[:140] + "…"
				}
				msg += ": " + e
			}
			out = append(out, msg)
		}
		fh.Close()
		in.offsets[f] = off
	}
	return out
}

// diff describes what changed between two observations ("" if nothing).
// A client call failing is evidence only of faults on the client's path
// (clientPath): the gateway link or the orchestrator behind it.
func diff(a, b effects, lines []string, clientPath bool) string {
	var what []string
	for id, n := range b.attempts {
		// A first lease (0 → 1) is a partition starting, not an effect.
		if m, ok := a.attempts[id]; ok && m >= 1 && n > m {
			what = append(what, fmt.Sprintf("partition %s leased again (attempt %d)", id, n))
		}
	}
	if b.resumes > a.resumes {
		what = append(what, "job resumed")
	}
	if clientPath && b.client > a.client {
		what = append(what, fmt.Sprintf("%d client calls failed", b.client-a.client))
	}
	if len(lines) > 0 {
		what = append(what, lines[0])
		if len(lines) > 1 {
			what = append(what, fmt.Sprintf("+%d more log lines", len(lines)-1))
		}
	}
	return strings.Join(what, "; ")
}

// run injects until stop closes; every fault is healed before the next
// one and before run returns.
func (in *injector) run(stop chan struct{}) {
	in.newLogLines() // what came before this job is not its effect
	for !in.done() {
		if !in.sleep(stop, in.between(100*time.Millisecond, 500*time.Millisecond)) {
			return
		}
		before, err := in.observe()
		if err != nil || !before.running {
			continue // not running (yet, or any more): a fault now hits nothing
		}
		in.newLogLines()
		kind := in.next()
		if err := in.inject(kind); err != nil {
			in.err = fmt.Errorf("%s: %w", kind, err)
			return
		}
		// Wait for an effect: a failed attempt shows once its retry
		// leases the partition again, a stall once the batch deadline
		// fires.
		var effect string
		deadline := time.Now().Add(in.cfg.batchTimeout + 3*time.Second)
		if kind == "pause orchestrator" {
			deadline = time.Now().Add(3 * time.Second) // the pause itself outlasted the lease
		}
		for effect == "" && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			after, err := in.observe()
			if err != nil {
				continue
			}
			effect = diff(before, after, in.newLogLines(), kind == "net reset gateway" || kind == "kill orchestrator")
			if !after.running {
				break
			}
		}
		in.mu.Lock()
		in.total++
		in.tried[kind]++
		if effect != "" {
			in.hits++
			in.byKind[kind]++
			in.log = append(in.log, fmt.Sprintf("job %s, %s: %s", in.job, kind, effect))
		}
		in.mu.Unlock()
	}
}

func (in *injector) inject(kind string) error {
	switch {
	case kind == "pause orchestrator":
		// Split brain: a replica stopped past its lease (CUTOVER_LEASE
		// 4s) wakes up after the other took its partitions over; the
		// fence must refuse what it still sends.
		in.st.services[in.orchestrator()].pause(6*time.Second + in.between(0, 2*time.Second))
		return nil
	case kind == "kill orchestrator":
		s := in.st.services[in.orchestrator()]
		s.kill9()
		time.Sleep(in.between(0, 800*time.Millisecond))
		return s.start()
	case strings.HasPrefix(kind, "kill "):
		s := in.st.services[strings.TrimPrefix(kind, "kill ")]
		s.kill9()
		time.Sleep(in.between(0, 800*time.Millisecond))
		return s.start()
	case kind == "postgres restart":
		return in.pg.restart()
	}
	var link, typ, attrs string
	var hold time.Duration
	switch kind {
	case "net reset stage":
		link, typ, attrs, hold = stages[in.rng.IntN(len(stages))], "reset_peer", `{"timeout":0}`, in.between(200*time.Millisecond, 800*time.Millisecond)
	case "net stall stage":
		// Longer than the batch deadline, so the deadline must fire.
		link, typ, attrs, hold = stages[in.rng.IntN(len(stages))], "timeout", `{"timeout":0}`, in.cfg.batchTimeout+in.between(time.Second, 2*time.Second)
	case "net stall acks":
		// The loader commits, its acknowledgements do not arrive: the
		// batches go again and only the ledger keeps them from loading
		// twice.
		p := in.st.proxies["loader"]
		body := `{"name":"chaos","type":"timeout","stream":"downstream","toxicity":1,"attributes":{"timeout":0}}`
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			return fmt.Errorf("add timeout toxic on loader acks: %w", err)
		}
		time.Sleep(in.cfg.batchTimeout + in.between(time.Second, 2*time.Second))
		return p.Toxics.RemoveToxic(context.Background(), "chaos")
	case "net reset target", "net reset control", "net reset source", "net reset gateway", "net reset pgsource":
		link = strings.TrimPrefix(kind, "net reset ")
		typ, attrs, hold = "reset_peer", `{"timeout":0}`, in.between(300*time.Millisecond, 900*time.Millisecond)
	default:
		return fmt.Errorf("unknown fault kind %q", kind)
	}
	p := in.st.proxies[link]
	if p == nil {
		return fmt.Errorf("no proxy for link %s", link)
	}
	stream := []string{"upstream", "downstream"}[in.rng.IntN(2)]
	body := fmt.Sprintf(`{"name":"chaos","type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, typ, stream, attrs)
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		return fmt.Errorf("add %s toxic on %s: %w", typ, link, err)
	}
	time.Sleep(hold)
	return p.Toxics.RemoveToxic(context.Background(), "chaos")
}

// orchestrator picks one of the two replicas.
func (in *injector) orchestrator() string {
	return []string{"orchestrator", "orchestrator2"}[in.rng.IntN(2)]
}
