package localcloud

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// XML shapes of the EC2 (ec2query) responses: lowerCamel element names and
// lists wrapped in <item>.
type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xEC2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xInstance struct {
	InstanceID       string        `xml:"instanceId"`
	ImageID          string        `xml:"imageId"`
	InstanceState    xState        `xml:"instanceState"`
	PrivateDNSName   string        `xml:"privateDnsName"`
	Reason           string        `xml:"reason"`
	AMILaunchIndex   int           `xml:"amiLaunchIndex"`
	InstanceType     string        `xml:"instanceType"`
	LaunchTime       awsTime       `xml:"launchTime"`
	AvailabilityZone string        `xml:"placement>availabilityZone"`
	Tenancy          string        `xml:"placement>tenancy"`
	SubnetID         string        `xml:"subnetId"`
	VPCID            string        `xml:"vpcId"`
	PrivateIP        string        `xml:"privateIpAddress"`
	Architecture     string        `xml:"architecture"`
	StateReason      *xStateReason `xml:"stateReason,omitempty"`
	Tags             []xEC2Tag     `xml:"tagSet>item"`
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

func ec2Tags(tags []Tag) []xEC2Tag {
	var out []xEC2Tag
	for _, t := range tags {
		out = append(out, xEC2Tag(t))
	}
	return out
}

func toXInstance(in Instance) xInstance {
	x := xInstance{
		InstanceID: in.ID, ImageID: in.ImageID, InstanceState: xState{stateCodes[in.State], in.State},
		PrivateDNSName: hostname(in.IP), InstanceType: in.InstanceType, LaunchTime: awsTime(in.LaunchTime),
		AvailabilityZone: in.AZ, Tenancy: "default", SubnetID: in.SubnetID, VPCID: VPCID, PrivateIP: in.IP,
		Architecture: "x86_64", Tags: ec2Tags(in.Tags),
	}
	if in.StateReason != "" {
		code, msg, _ := strings.Cut(in.StateReason, ": ")
		x.StateReason = &xStateReason{code, msg}
		x.Reason = in.StateReason
	}
	return x
}

type xLaunchTemplate struct {
	ID             string    `xml:"launchTemplateId"`
	Name           string    `xml:"launchTemplateName"`
	CreateTime     awsTime   `xml:"createTime"`
	CreatedBy      string    `xml:"createdBy"`
	DefaultVersion int       `xml:"defaultVersionNumber"`
	LatestVersion  int       `xml:"latestVersionNumber"`
	Tags           []xEC2Tag `xml:"tagSet>item"`
}

func (s *Server) toXLT(t LaunchTemplate) xLaunchTemplate {
	return xLaunchTemplate{t.ID, t.Name, awsTime(t.Created), "arn:aws:iam::" + s.cloud.cfg.AccountID + ":root", t.DefaultVersion, len(t.Versions), ec2Tags(t.Tags)}
}

func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, action string, f qform) {
	w, done, ok := s.gate(w, r, "ec2", action, f, writeEC2Error)
	if !ok {
		return
	}
	defer done()
	if f.str("DryRun") == "true" {
		writeEC2Error(w, apiErr(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."))
		return
	}
	out, err := s.ec2(action, f)
	if err != nil {
		ae, ok := err.(*APIError)
		if !ok {
			ae = apiErr(http.StatusInternalServerError, "InternalError", "%v", err)
		}
		writeEC2Error(w, ae)
		return
	}
	writeEC2Response(w, out)
}

func ec2Filters(f qform) map[string][]string {
	out := map[string][]string{}
	for _, p := range f.structs("Filter") {
		out[f.str(p+"Name")] = f.list(p + "Value")
	}
	return out
}

// tagSpecs returns the tags of the TagSpecification entries for resource.
func tagSpecs(f qform, prefix, resource string) []Tag {
	var out []Tag
	for _, p := range f.structs(prefix) {
		if rt := f.str(p + "ResourceType"); rt != "" && rt != resource {
			continue
		}
		for _, tp := range f.structs(p + "Tag") {
			out = append(out, Tag{f.str(tp + "Key"), f.str(tp + "Value")})
		}
	}
	return out
}

func (s *Server) ec2(action string, f qform) (any, error) {
	c := s.cloud
	switch action {
	case "DescribeAvailabilityZones":
		type xAZ struct {
			ZoneName    string `xml:"zoneName"`
			ZoneID      string `xml:"zoneId"`
			ZoneState   string `xml:"zoneState"`
			RegionName  string `xml:"regionName"`
			ZoneType    string `xml:"zoneType"`
			GroupName   string `xml:"groupName"`
			OptIn       string `xml:"optInStatus"`
			BorderGroup string `xml:"networkBorderGroup"`
		}
		out := struct {
			XMLName xml.Name `xml:"DescribeAvailabilityZonesResponse"`
			ec2Envelope
			Zones []xAZ `xml:"availabilityZoneInfo>item"`
		}{ec2Envelope: env()}
		names := f.list("ZoneName")
		for _, n := range names {
			if _, ok := azByName(n); !ok {
				return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "The zone '%s' does not exist.", n)
			}
		}
		for _, sn := range defaultSubnets {
			if len(names) > 0 && !contains(names, sn.AZ) {
				continue
			}
			out.Zones = append(out.Zones, xAZ{sn.AZ, sn.AZID, "available", c.cfg.Region, "availability-zone", c.cfg.Region, "opt-in-not-required", c.cfg.Region})
		}
		return out, nil
	case "DescribeSubnets":
		type xSubnet struct {
			SubnetID     string `xml:"subnetId"`
			SubnetArn    string `xml:"subnetArn"`
			State        string `xml:"state"`
			VPCID        string `xml:"vpcId"`
			OwnerID      string `xml:"ownerId"`
			CIDR         string `xml:"cidrBlock"`
			AvailableIPs int    `xml:"availableIpAddressCount"`
			AZ           string `xml:"availabilityZone"`
			AZID         string `xml:"availabilityZoneId"`
			DefaultForAz bool   `xml:"defaultForAz"`
			MapPublicIP  bool   `xml:"mapPublicIpOnLaunch"`
		}
		ids := f.list("SubnetId")
		for _, id := range ids {
			if _, ok := subnetByID(id); !ok {
				return nil, apiErr(http.StatusBadRequest, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
			}
		}
		filters := ec2Filters(f)
		out := struct {
			XMLName xml.Name `xml:"DescribeSubnetsResponse"`
			ec2Envelope
			Subnets []xSubnet `xml:"subnetSet>item"`
		}{ec2Envelope: env()}
		for _, sn := range defaultSubnets {
			if len(ids) > 0 && !contains(ids, sn.ID) {
				continue
			}
			if v, ok := filters["availability-zone"]; ok && !contains(v, sn.AZ) {
				continue
			}
			if v, ok := filters["vpc-id"]; ok && !contains(v, VPCID) {
				continue
			}
			if v, ok := filters["subnet-id"]; ok && !contains(v, sn.ID) {
				continue
			}
			if v, ok := filters["default-for-az"]; ok && !contains(v, "true") {
				continue
			}
			out.Subnets = append(out.Subnets, xSubnet{sn.ID, "arn:aws:ec2:" + c.cfg.Region + ":" + c.cfg.AccountID + ":subnet/" + sn.ID,
				"available", VPCID, c.cfg.AccountID, sn.CIDR, 4091, sn.AZ, sn.AZID, true, false})
		}
		return out, nil
	case "RunInstances":
		min, err := f.intp("MinCount")
		if err != nil {
			return nil, err
		}
		max, err := f.intp("MaxCount")
		if err != nil {
			return nil, err
		}
		if min == nil || max == nil {
			return nil, apiErr(http.StatusBadRequest, "MissingParameter", "The request must contain the parameters MinCount and MaxCount")
		}
		in := RunInput{ImageID: f.str("ImageId"), InstanceType: f.str("InstanceType"), SubnetID: f.str("SubnetId"),
			AZ: f.str("Placement.AvailabilityZone"), UserData: f.str("UserData"), MinCount: *min, MaxCount: *max,
			Tags: tagSpecs(f, "TagSpecification", "instance")}
		if f.has("LaunchTemplate.LaunchTemplateId") || f.has("LaunchTemplate.LaunchTemplateName") {
			in.LT = &LTRef{ID: f.str("LaunchTemplate.LaunchTemplateId"), Name: f.str("LaunchTemplate.LaunchTemplateName"), Version: f.str("LaunchTemplate.Version")}
		}
		insts, err := c.RunInstances(in)
		if err != nil {
			return nil, err
		}
		out := struct {
			XMLName xml.Name `xml:"RunInstancesResponse"`
			ec2Envelope
			ReservationID string      `xml:"reservationId"`
			OwnerID       string      `xml:"ownerId"`
			Instances     []xInstance `xml:"instancesSet>item"`
		}{ec2Envelope: env(), ReservationID: "r-" + randHex(17), OwnerID: c.cfg.AccountID}
		for i, in := range insts {
			x := toXInstance(in)
			x.AMILaunchIndex = i
			out.Instances = append(out.Instances, x)
		}
		return out, nil
	case "DescribeInstances":
		insts, err := c.Instances(f.list("InstanceId"), ec2Filters(f))
		if err != nil {
			return nil, err
		}
		out := struct {
			XMLName xml.Name `xml:"DescribeInstancesResponse"`
			ec2Envelope
			Reservations []xReservation `xml:"reservationSet>item"`
		}{ec2Envelope: env()}
		// One reservation per instance: the local cloud does not remember
		// which RunInstances call launched which instances.
		for _, in := range insts {
			out.Reservations = append(out.Reservations, xReservation{"r-" + strings.TrimPrefix(in.ID, "i-"), c.cfg.AccountID, []xInstance{toXInstance(in)}})
		}
		return out, nil
	case "TerminateInstances":
		res, err := c.TerminateInstances(f.list("InstanceId"))
		if err != nil {
			return nil, err
		}
		type xChange struct {
			InstanceID string `xml:"instanceId"`
			Current    xState `xml:"currentState"`
			Previous   xState `xml:"previousState"`
		}
		out := struct {
			XMLName xml.Name `xml:"TerminateInstancesResponse"`
			ec2Envelope
			Changes []xChange `xml:"instancesSet>item"`
		}{ec2Envelope: env()}
		for _, r := range res {
			out.Changes = append(out.Changes, xChange{r.ID, xState{stateCodes[r.Current], r.Current}, xState{stateCodes[r.Previous], r.Previous}})
		}
		return out, nil
	case "CreateImage":
		id, err := c.CreateImage(f.str("InstanceId"), f.str("Name"), f.str("Description"), tagSpecs(f, "TagSpecification", "image"))
		if err != nil {
			return nil, err
		}
		return struct {
			XMLName xml.Name `xml:"CreateImageResponse"`
			ec2Envelope
			ImageID string `xml:"imageId"`
		}{ec2Envelope: env(), ImageID: id}, nil
	case "DescribeImages":
		imgs, err := c.Images(f.list("ImageId"), ec2Filters(f))
		if err != nil {
			return nil, err
		}
		type xImage struct {
			ImageID          string    `xml:"imageId"`
			ImageLocation    string    `xml:"imageLocation"`
			ImageState       string    `xml:"imageState"`
			OwnerID          string    `xml:"imageOwnerId"`
			CreationDate     awsTime   `xml:"creationDate"`
			IsPublic         bool      `xml:"isPublic"`
			Architecture     string    `xml:"architecture"`
			ImageType        string    `xml:"imageType"`
			Name             string    `xml:"name"`
			Description      string    `xml:"description"`
			RootDeviceType   string    `xml:"rootDeviceType"`
			Virtualization   string    `xml:"virtualizationType"`
			Hypervisor       string    `xml:"hypervisor"`
			SourceInstanceID string    `xml:"sourceInstanceId,omitempty"`
			Tags             []xEC2Tag `xml:"tagSet>item"`
			Devices          []xDevice `xml:"blockDeviceMapping>item"`
		}
		out := struct {
			XMLName xml.Name `xml:"DescribeImagesResponse"`
			ec2Envelope
			Images []xImage `xml:"imagesSet>item"`
		}{ec2Envelope: env()}
		for _, im := range imgs {
			var devs []xDevice
			if im.SnapshotID != "" {
				devs = append(devs, xDevice{DeviceName: "/dev/xvda", SnapshotID: im.SnapshotID})
			}
			out.Images = append(out.Images, xImage{im.ID, c.cfg.AccountID + "/" + im.Name, "available", c.cfg.AccountID, awsTime(im.Created),
				false, "x86_64", "machine", im.Name, im.Description, "ebs", "hvm", "xen", im.SourceID, ec2Tags(im.Tags), devs})
		}
		return out, nil
	case "DeregisterImage":
		if err := c.DeregisterImage(f.str("ImageId")); err != nil {
			return nil, err
		}
		return struct {
			XMLName xml.Name `xml:"DeregisterImageResponse"`
			ec2Envelope
			Return bool `xml:"return"`
		}{ec2Envelope: env(), Return: true}, nil
	case "DeleteSnapshot":
		if err := c.DeleteSnapshot(f.str("SnapshotId")); err != nil {
			return nil, err
		}
		return struct {
			XMLName xml.Name `xml:"DeleteSnapshotResponse"`
			ec2Envelope
			Return bool `xml:"return"`
		}{ec2Envelope: env(), Return: true}, nil
	case "DeleteLaunchTemplate":
		lt, err := c.DeleteLaunchTemplate(f.str("LaunchTemplateName"))
		if err != nil {
			return nil, err
		}
		return struct {
			XMLName xml.Name `xml:"DeleteLaunchTemplateResponse"`
			ec2Envelope
			LT xLaunchTemplate `xml:"launchTemplate"`
		}{ec2Envelope: env(), LT: s.toXLT(lt)}, nil
	case "CreateLaunchTemplate", "CreateLaunchTemplateVersion":
		v := LTVersion{Description: f.str("VersionDescription"), ImageID: f.str("LaunchTemplateData.ImageId"),
			InstanceType: f.str("LaunchTemplateData.InstanceType"), UserData: f.str("LaunchTemplateData.UserData"),
			InstanceTags: tagSpecs(f, "LaunchTemplateData.TagSpecification", "instance")}
		if action == "CreateLaunchTemplate" {
			if !f.has("LaunchTemplateName") {
				return nil, apiErr(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter LaunchTemplateName")
			}
			lt, err := c.CreateLaunchTemplate(f.str("LaunchTemplateName"), v, tagSpecs(f, "TagSpecification", "launch-template"))
			if err != nil {
				return nil, err
			}
			return struct {
				XMLName xml.Name `xml:"CreateLaunchTemplateResponse"`
				ec2Envelope
				LT xLaunchTemplate `xml:"launchTemplate"`
			}{ec2Envelope: env(), LT: s.toXLT(lt)}, nil
		}
		lt, n, err := c.CreateLaunchTemplateVersion(LTRef{ID: f.str("LaunchTemplateId"), Name: f.str("LaunchTemplateName")}, v)
		if err != nil {
			return nil, err
		}
		type xVersion struct {
			ID            string  `xml:"launchTemplateId"`
			Name          string  `xml:"launchTemplateName"`
			VersionNumber int     `xml:"versionNumber"`
			Description   string  `xml:"versionDescription,omitempty"`
			CreateTime    awsTime `xml:"createTime"`
			DefaultVer    bool    `xml:"defaultVersion"`
			ImageID       string  `xml:"launchTemplateData>imageId,omitempty"`
			InstanceType  string  `xml:"launchTemplateData>instanceType,omitempty"`
			UserData      string  `xml:"launchTemplateData>userData,omitempty"`
		}
		return struct {
			XMLName xml.Name `xml:"CreateLaunchTemplateVersionResponse"`
			ec2Envelope
			V xVersion `xml:"launchTemplateVersion"`
		}{ec2Envelope: env(), V: xVersion{lt.ID, lt.Name, n, v.Description, awsTime(c.Now()), n == lt.DefaultVersion, v.ImageID, v.InstanceType, v.UserData}}, nil
	case "DescribeLaunchTemplates":
		lts, err := c.LaunchTemplates(f.list("LaunchTemplateId"), f.list("LaunchTemplateName"))
		if err != nil {
			return nil, err
		}
		out := struct {
			XMLName xml.Name `xml:"DescribeLaunchTemplatesResponse"`
			ec2Envelope
			LTs []xLaunchTemplate `xml:"launchTemplates>item"`
		}{ec2Envelope: env()}
		for _, lt := range lts {
			out.LTs = append(out.LTs, s.toXLT(lt))
		}
		return out, nil
	}
	return nil, apiErr(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service (the local cloud implements a subset of EC2).", action)
}

func azByName(n string) (Subnet, bool) {
	for _, s := range defaultSubnets {
		if s.AZ == n {
			return s, true
		}
	}
	return Subnet{}, false
}

// xDevice is one block device mapping of an image: its EBS snapshot.
type xDevice struct {
	DeviceName string `xml:"deviceName"`
	SnapshotID string `xml:"ebs>snapshotId"`
}
