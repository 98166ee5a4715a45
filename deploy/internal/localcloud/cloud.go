package localcloud

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// EC2 instance states and their codes, as DescribeInstances reports them.
const (
	statePending      = "pending"
	stateRunning      = "running"
	stateShuttingDown = "shutting-down"
	stateTerminated   = "terminated"
	stateStopped      = "stopped"
)

var stateCodes = map[string]int{statePending: 0, stateRunning: 16, stateShuttingDown: 32, stateTerminated: 48, "stopping": 64, stateStopped: 80}

// BaseImageID is the built-in image: it boots UserData and nothing else.
const BaseImageID = "ami-localbase"

// Subnet is one subnet of the default VPC.
type Subnet struct {
	ID, AZ, AZID, CIDR string
}

// VPCID is the default VPC.
const VPCID = "vpc-0f0c0a1100000000d"

var defaultSubnets = []Subnet{
	{ID: "subnet-0a1a00000000000a1", AZ: "us-east-1a", AZID: "use1-az1", CIDR: "172.31.0.0/20"},
	{ID: "subnet-0b1b00000000000b2", AZ: "us-east-1b", AZID: "use1-az2", CIDR: "172.31.16.0/20"},
	{ID: "subnet-0c1c00000000000c3", AZ: "us-east-1c", AZID: "use1-az4", CIDR: "172.31.32.0/20"},
}

// Tag is an EC2 tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Image is an AMI. Workload holds the scripts an instance booted from it
// runs before its own UserData, which is how CreateImage "bakes" software.
type Image struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Workload    []string  `json:"workload,omitempty"`
	Created     time.Time `json:"created"`
	SourceID    string    `json:"sourceInstanceId,omitempty"`
	Tags        []Tag     `json:"tags,omitempty"`
	// SnapshotID is the EBS snapshot behind the image's root volume; it
	// outlives DeregisterImage until DeleteSnapshot, as on EC2.
	SnapshotID string `json:"snapshotId,omitempty"`
}

// LaunchTemplate is an EC2 launch template with its versions.
type LaunchTemplate struct {
	ID             string      `json:"id"`
	Name           string      `json:"name"`
	Created        time.Time   `json:"created"`
	DefaultVersion int         `json:"defaultVersion"`
	Versions       []LTVersion `json:"versions"`
	Tags           []Tag       `json:"tags,omitempty"`
}

// LTVersion is one launch template version's data.
type LTVersion struct {
	Number       int    `json:"number"`
	Description  string `json:"description,omitempty"`
	ImageID      string `json:"imageId,omitempty"`
	InstanceType string `json:"instanceType,omitempty"`
	UserData     string `json:"userData,omitempty"` // base64, as sent
	InstanceTags []Tag  `json:"instanceTags,omitempty"`
}

// LTRef names a launch template the way groups and RunInstances do.
type LTRef struct {
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"` // number, $Latest or $Default
}

// Instance is an EC2 instance: a process group on a loopback address.
type Instance struct {
	ID           string
	ImageID      string
	InstanceType string
	SubnetID     string
	AZ           string
	IP           string
	LaunchTime   time.Time
	State        string
	StateReason  string
	Tags         []Tag
	UserData     string // base64, as sent
	Workload     []string
	LT           *LTRef

	// Auto Scaling view; Group is empty for standalone instances.
	Group     string
	Lifecycle string
	Health    string
	Protected bool

	hook         *pendingAction
	termStart    time.Time // real time SIGTERM was sent
	killed       bool
	termActivity *Activity
	endTime      time.Time
	inServiceAt  time.Time // warm-up runs from here

	// spot is an injected interruption or rebalance recommendation
	// (spot.go); warm is the instance's warm-pool bookkeeping (warmpool.go).
	spot *spotNotice
	warm warmInfo

	proc *proc
	imds *imdsServer
	log  *os.File

	// iidDoc and iidSig are the instance identity document and its
	// signature, fixed at launch like EC2's.
	iidDoc []byte
	iidSig string
}

type pendingAction struct {
	hook     string
	token    string
	deadline time.Time
	timeout  time.Duration
	result   string // DefaultResult
}

// Cloud is the whole emulated account. One mutex guards it: the emulator
// serves a handful of clients and simplicity beats throughput here.
type Cloud struct {
	cfg   Config
	clock Clock
	log   *slog.Logger
	spawn func(procSpec) (*proc, error)
	iid   *iidSigner

	mu     sync.Mutex
	images map[string]*Image
	// snapshots are the EBS snapshots CreateImage made, registered or not.
	snapshots  map[string]bool
	templates  map[string]*LaunchTemplate
	instances  map[string]*Instance
	groups     map[string]*Group
	activities []*Activity
	ipUsed     map[string]bool
	metrics    *cwstore.Store
	alarms     cwstore.Alarms
	policies   map[string]*Policy // by ARN
	faults     faults
	events     eventLog
	closed     bool

	kick chan struct{}
	// passed is closed and replaced at the end of every reconcile and alarm
	// pass, the moments the state changes on its own (guarded by mu).
	passed chan struct{}
	dirty  bool
	// endpoint is this cloud's own URL once listening; instances get it as
	// AWS_ENDPOINT_URL, the local analogue of AWS endpoints being reachable
	// from an EC2 instance.
	endpoint string
}

// NewCloud builds the state with its default VPC and base image from cfg
// (start from DefaultConfig). Start the reconcile loop with Run.
func NewCloud(cfg Config) (*Cloud, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = NewOffsetClock()
	}
	iid, err := newIIDSigner(cfg.AccountID, time.Now())
	if err != nil {
		return nil, err
	}
	c := &Cloud{
		cfg: cfg, clock: clk, log: cfg.Logger, spawn: defaultSpawner.start, iid: iid,
		images:    map[string]*Image{},
		snapshots: map[string]bool{},
		templates: map[string]*LaunchTemplate{},
		instances: map[string]*Instance{},
		groups:    map[string]*Group{},
		ipUsed:    map[string]bool{},
		metrics:   cwstore.NewStore(),
		alarms:    cwstore.Alarms{},
		policies:  map[string]*Policy{},
		faults:    newFaults(),
		kick:      make(chan struct{}, 1),
		passed:    make(chan struct{}),
	}
	c.images[BaseImageID] = &Image{ID: BaseImageID, Name: "localcloud-base", Description: "Built-in base image: runs UserData as a shell script", Created: clk.Now()}
	if cfg.StateFile != "" {
		if err := c.load(cfg.StateFile); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// IIDCertificatePEM is the PEM certificate whose key signs every instance
// identity document of this cloud (what --iid-cert-out writes).
func (c *Cloud) IIDCertificatePEM() []byte { return append([]byte(nil), c.iid.certPEM...) }

// Now is the cloud's clock.
func (c *Cloud) Now() time.Time { return c.clock.Now() }

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func newInstanceID() string { return "i-" + randHex(17) }

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Subnets returns the default VPC's subnets.
func (c *Cloud) Subnets() []Subnet { return append([]Subnet(nil), defaultSubnets...) }

func subnetByID(id string) (Subnet, bool) {
	for _, s := range defaultSubnets {
		if s.ID == id {
			return s, true
		}
	}
	return Subnet{}, false
}

func (c *Cloud) allocIP() (string, error) {
	if strings.Count(c.cfg.InstanceIPPrefix, ".") == 1 { // a /16
		for n := 1; n < 256*256-1; n++ {
			if n%256 == 0 || n%256 == 255 {
				continue
			}
			ip := c.cfg.InstanceIPPrefix + "." + strconv.Itoa(n/256) + "." + strconv.Itoa(n%256)
			if !c.ipUsed[ip] {
				c.ipUsed[ip] = true
				return ip, nil
			}
		}
		return "", apiErr(http.StatusServiceUnavailable, "InsufficientInstanceCapacity", "all addresses of %s.0.0/16 are in use", c.cfg.InstanceIPPrefix)
	}
	for n := 1; n <= 254; n++ {
		ip := c.cfg.InstanceIPPrefix + "." + strconv.Itoa(n)
		if !c.ipUsed[ip] {
			c.ipUsed[ip] = true
			return ip, nil
		}
	}
	return "", apiErr(http.StatusServiceUnavailable, "InsufficientInstanceCapacity", "all 254 addresses of %s.0/24 are in use", c.cfg.InstanceIPPrefix)
}

// resolveLT finds a template and version by id or name.
func (c *Cloud) resolveLT(ref LTRef) (*LaunchTemplate, *LTVersion, error) {
	var lt *LaunchTemplate
	switch {
	case ref.ID != "" && ref.Name != "":
		return nil, nil, validation("Valid requests must contain either launchTemplateId or LaunchTemplateName, not both")
	case ref.ID != "":
		lt = c.templates[ref.ID]
		if lt == nil {
			return nil, nil, validation("You must use a valid fully-formed launch template. The specified launch template, with template ID %s, does not exist.", ref.ID)
		}
	case ref.Name != "":
		for _, t := range c.templates {
			if t.Name == ref.Name {
				lt = t
			}
		}
		if lt == nil {
			return nil, nil, validation("You must use a valid fully-formed launch template. The specified launch template, with template name %s, does not exist.", ref.Name)
		}
	default:
		return nil, nil, validation("Valid requests must contain either LaunchTemplateId or LaunchTemplateName")
	}
	v := lt.DefaultVersion
	switch ref.Version {
	case "", "$Default":
	case "$Latest":
		v = lt.Versions[len(lt.Versions)-1].Number
	default:
		n, err := strconv.Atoi(ref.Version)
		if err != nil || n < 1 || n > len(lt.Versions) {
			return nil, nil, validation("You must use a valid fully-formed launch template. The specified launch template version %s of template %s does not exist.", ref.Version, lt.Name)
		}
		v = n
	}
	return lt, &lt.Versions[v-1], nil
}

// InstanceInfo is what the test hook lists.
type InstanceInfo struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Group        string `json:"group,omitempty"`
	Lifecycle    string `json:"lifecycle,omitempty"`
	Health       string `json:"health,omitempty"`
	IP           string `json:"privateIp"`
	AZ           string `json:"availabilityZone"`
	SubnetID     string `json:"subnetId"`
	ImageID      string `json:"imageId"`
	PID          int    `json:"pid,omitempty"`
	IMDSEndpoint string `json:"imdsEndpoint,omitempty"`
}

// ListInstances returns every known instance with its process id.
func (c *Cloud) ListInstances() []InstanceInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]InstanceInfo, 0, len(c.instances))
	for _, in := range c.instances {
		info := InstanceInfo{ID: in.ID, State: in.State, Group: in.Group, Lifecycle: in.Lifecycle, Health: in.Health,
			IP: in.IP, AZ: in.AZ, SubnetID: in.SubnetID, ImageID: in.ImageID}
		if in.proc != nil && !in.proc.exited() {
			info.PID = in.proc.pid
		}
		if in.imds != nil {
			info.IMDSEndpoint = in.imds.endpoint
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Shutdown kills every instance process group and waits (bounded) for them.
func (c *Cloud) Shutdown(timeout time.Duration) {
	c.mu.Lock()
	c.closed = true
	var procs []*proc
	for _, in := range c.instances {
		if in.proc != nil {
			_ = in.proc.signalGroup(syscall.SIGTERM)
			procs = append(procs, in.proc)
		}
		c.releaseLocked(in)
	}
	c.mu.Unlock()
	deadline := time.After(timeout)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
		}
		_ = p.signalGroup(syscall.SIGKILL)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(time.Second):
		}
	}
	if c.cfg.StateFile != "" {
		c.mu.Lock()
		_ = c.saveLocked()
		c.mu.Unlock()
	}
}

func (c *Cloud) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func tagsOf(in []Tag, key string) (string, bool) {
	for _, t := range in {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// nextPass returns a channel closed when the next reconcile or alarm pass
// ends, so a caller waiting for the cloud to act waits for that, not for a
// guessed time.
func (c *Cloud) nextPass() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.passed
}

// passDoneLocked wakes nextPass's waiters.
func (c *Cloud) passDoneLocked() {
	close(c.passed)
	c.passed = make(chan struct{})
}
