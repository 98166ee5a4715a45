package localcloud

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// An instance's life as a process group: launch (address, metadata
// service), boot (its workload starts), stop and release.

// launchSpec is everything needed to boot one instance.
type launchSpec struct {
	ImageID      string
	InstanceType string
	SubnetID     string
	UserData     string // base64
	Tags         []Tag
	Group        string
	LT           *LTRef
}

// launchLocked boots an instance: allocates id and address, starts its IMDS
// and its process group. The instance starts pending.
func (c *Cloud) launchLocked(spec launchSpec) (*Instance, error) {
	img, ok := c.images[spec.ImageID]
	if !ok {
		return nil, apiErr(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", spec.ImageID)
	}
	sn, ok := subnetByID(spec.SubnetID)
	if !ok {
		return nil, apiErr(http.StatusBadRequest, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", spec.SubnetID)
	}
	var userScript string
	if spec.UserData != "" {
		b, err := base64.StdEncoding.DecodeString(spec.UserData)
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, "InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.")
		}
		userScript = string(b)
	}
	ip, err := c.allocIP()
	if err != nil {
		return nil, err
	}
	if spec.InstanceType == "" {
		spec.InstanceType = "t3.micro"
	}
	inst := &Instance{
		ID: newInstanceID(), ImageID: img.ID, InstanceType: spec.InstanceType,
		SubnetID: sn.ID, AZ: sn.AZ, IP: ip, LaunchTime: c.clock.Now(), State: statePending,
		Tags: append([]Tag(nil), spec.Tags...), UserData: spec.UserData, LT: spec.LT,
		Group: spec.Group,
	}
	inst.Workload = append([]string(nil), img.Workload...)
	if userScript != "" {
		inst.Workload = append(inst.Workload, userScript)
	}
	if inst.Group != "" {
		inst.Lifecycle, inst.Health = "Pending", "Healthy"
	}
	inst.iidDoc = identityDocument(imdsView{
		InstanceID: inst.ID, ImageID: inst.ImageID, InstanceType: inst.InstanceType,
		AZ: inst.AZ, IP: inst.IP, Region: c.cfg.Region, AccountID: c.cfg.AccountID, LaunchTime: inst.LaunchTime,
	})
	if inst.iidSig, err = c.iid.sign(inst.iidDoc); err != nil {
		delete(c.ipUsed, ip)
		return nil, apiErr(http.StatusInternalServerError, "InternalError", "sign instance identity document: %v", err)
	}
	id := inst.ID
	inst.imds, err = startIMDS(ip, func() (imdsView, bool) { return c.imdsView(id) })
	if err != nil {
		delete(c.ipUsed, ip)
		return nil, apiErr(http.StatusInternalServerError, "InternalError", "start metadata service on %s: %v", ip, err)
	}
	if c.cfg.InstanceLogDir != "" {
		f, err := os.OpenFile(filepath.Join(c.cfg.InstanceLogDir, inst.ID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			inst.log = f
		}
	}
	// The workload starts when the instance has booted (reconcile, after
	// --boot-delay), not now: a real instance's programs run only once
	// its OS is up, and a launch's delay is what warm pools buy back.
	c.instances[inst.ID] = inst
	c.log.Info("instance launched", "instance", inst.ID, "ip", inst.IP, "az", inst.AZ, "group", inst.Group)
	return inst, nil
}

// bootLocked starts a booted instance's workload, once. A workload that
// cannot start fails the instance's status check: a group replaces it, a
// standalone instance stops, as EC2 stops one whose boot failed.
func (c *Cloud) bootLocked(inst *Instance) bool {
	if inst.proc != nil {
		return true
	}
	if inst.Group != "" && inst.Health == "Unhealthy" {
		// Its start failed already: it stays impaired, as an EC2
		// instance that failed its status check does, until the group
		// replaces it (not at all while ReplaceUnhealthy is suspended),
		// rather than trying (and logging) again every reconcile pass.
		return false
	}
	if err := c.startProcLocked(inst); err != nil {
		c.log.Warn("instance workload did not start", "instance", inst.ID, "group", inst.Group, "err", err)
		if inst.Group == "" {
			inst.State, inst.StateReason = stateStopped, "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
		} else {
			inst.Health = "Unhealthy"
		}
		return false
	}
	c.log.Info("instance booted", "instance", inst.ID, "group", inst.Group, "pid", inst.proc.pid)
	return true
}

// startProcLocked runs the instance's workload as a new process group:
// when it has booted, and again when a stopped warm-pool instance starts.
func (c *Cloud) startProcLocked(inst *Instance) error {
	p, err := c.spawn(procSpec{
		Shell:   c.cfg.Shell,
		Scripts: inst.Workload,
		Output:  inst.log,
		Env: []string{
			"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + inst.imds.endpoint,
			"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv4",
			"AWS_REGION=" + c.cfg.Region,
			"AWS_ENDPOINT_URL=" + c.endpoint,
			"LOCALCLOUD_INSTANCE_ID=" + inst.ID,
			"LOCALCLOUD_PRIVATE_IP=" + inst.IP,
		},
	})
	if err != nil {
		return apiErr(http.StatusInternalServerError, "InternalError", "%v", err)
	}
	inst.proc, inst.termStart, inst.killed = p, time.Time{}, false
	return nil
}

func (c *Cloud) imdsView(id string) (imdsView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.instances[id]
	if !ok || inst.State == stateTerminated {
		return imdsView{}, false
	}
	tags := map[string]string{}
	for _, t := range inst.Tags {
		tags[t.Key] = t.Value
	}
	ud := ""
	if b, err := base64.StdEncoding.DecodeString(inst.UserData); err == nil {
		ud = string(b)
	}
	return imdsView{
		InstanceID: inst.ID, ImageID: inst.ImageID, InstanceType: inst.InstanceType,
		AZ: inst.AZ, IP: inst.IP, Region: c.cfg.Region, AccountID: c.cfg.AccountID,
		UserData: ud, LaunchTime: inst.LaunchTime, Tags: tags,
		IID: inst.iidDoc, IIDSignature: inst.iidSig, Extra: c.imdsExtraLocked(inst),
	}, true
}

// stopLocked begins stopping an instance's process: SIGTERM to the group
// now, SIGKILL after the grace period (checked by reconcile).
func (c *Cloud) stopLocked(inst *Instance) {
	if inst.proc == nil || !inst.termStart.IsZero() {
		return
	}
	inst.termStart = time.Now()
	_ = inst.proc.signalGroup(syscall.SIGTERM)
}

// finishStopLocked escalates to SIGKILL after the grace period and reports
// whether the process group is gone.
func (c *Cloud) finishStopLocked(inst *Instance) bool {
	if inst.proc == nil {
		return true
	}
	if !inst.proc.exited() {
		if !inst.killed && time.Since(inst.termStart) >= c.cfg.TerminateGrace {
			inst.killed = true
			_ = inst.proc.signalGroup(syscall.SIGKILL)
		}
		return false
	}
	// The wrapper is gone; make sure nothing else of its group survives.
	_ = inst.proc.signalGroup(syscall.SIGKILL)
	return true
}

// releaseLocked frees an instance's address and metadata endpoint once its
// process is gone.
func (c *Cloud) releaseLocked(inst *Instance) {
	if inst.imds != nil {
		go inst.imds.close()
		inst.imds = nil
	}
	if inst.log != nil {
		inst.log.Close()
		inst.log = nil
	}
	delete(c.ipUsed, inst.IP)
}
