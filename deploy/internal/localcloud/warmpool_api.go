package localcloud

// XML shapes and handlers of the warm pool operations (awsQuery), as
// aws-sdk-go-v2's autoscaling client sends and reads them.

type xReusePolicy struct {
	ReuseOnScaleIn bool `xml:"ReuseOnScaleIn"`
}

type xWarmPoolConfig struct {
	MaxGroupPreparedCapacity *int          `xml:"MaxGroupPreparedCapacity,omitempty"`
	MinSize                  int           `xml:"MinSize"`
	PoolState                string        `xml:"PoolState"`
	Status                   string        `xml:"Status,omitempty"`
	InstanceReusePolicy      *xReusePolicy `xml:"InstanceReusePolicy,omitempty"`
}

func toXWarmPool(wp *WarmPool) *xWarmPoolConfig {
	if wp == nil {
		return nil
	}
	x := &xWarmPoolConfig{MinSize: wp.MinSize, PoolState: wp.PoolState, InstanceReusePolicy: &xReusePolicy{wp.ReuseOnScaleIn}}
	if wp.MaxPrepared >= 0 {
		n := wp.MaxPrepared
		x.MaxGroupPreparedCapacity = &n
	}
	if wp.Deleting {
		x.Status = "PendingDelete"
	}
	return x
}

// autoScalingWarmPool serves PutWarmPool, DescribeWarmPool and
// DeleteWarmPool; ok is false for any other action.
func (s *Server) autoScalingWarmPool(action string, f qform) (out any, ok bool, err error) {
	c := s.cloud
	group := f.str("AutoScalingGroupName")
	switch action {
	case "PutWarmPool":
		in := WarmPoolInput{PoolState: f.str("PoolState"), ReuseOnScaleIn: f.boolp("InstanceReusePolicy.ReuseOnScaleIn")}
		if in.MinSize, err = f.intp("MinSize"); err != nil {
			return nil, true, err
		}
		if in.MaxPrepared, err = f.intp("MaxGroupPreparedCapacity"); err != nil {
			return nil, true, err
		}
		return struct{}{}, true, c.PutWarmPool(group, in)
	case "DeleteWarmPool":
		force := f.boolp("ForceDelete")
		return struct{}{}, true, c.DeleteWarmPool(group, force != nil && *force)
	case "DescribeWarmPool":
		max, err := f.intp("MaxRecords")
		if err != nil {
			return nil, true, err
		}
		n := 0
		if max != nil {
			n = *max
		}
		v, token, err := c.DescribeWarmPool(group, n, f.str("NextToken"))
		if err != nil {
			return nil, true, err
		}
		var res struct {
			Config    *xWarmPoolConfig `xml:"WarmPoolConfiguration,omitempty"`
			Instances []xGroupInstance `xml:"Instances>member"`
			NextToken string           `xml:"NextToken,omitempty"`
		}
		res.Config, res.NextToken = toXWarmPool(v.Pool), token
		for _, in := range v.Instances {
			res.Instances = append(res.Instances, xGroupInstance{in.ID, in.InstanceType, in.AZ, in.Lifecycle, in.Health, ltOf(in.LT), in.Protected})
		}
		return res, true, nil
	}
	return nil, false, nil
}
