package clean

import (
	"errors"
	"testing"
)

func TestAddressCNTable(t *testing.T) {
	// The generated table must keep its promised coverage.
	if len(cnProvinces) != 34 {
		t.Fatalf("%d provincial-level divisions, want 34", len(cnProvinces))
	}
	prefectures := 0
	for _, c := range cnCities {
		if !cnProvinces[c.province].municipality {
			prefectures++
		}
	}
	if prefectures != 333 {
		t.Errorf("%d prefecture-level divisions, want 333", prefectures)
	}
	// Every city of these provinces has its full county table.
	for _, p := range cnProvinces {
		switch p.name {
		case "北京市", "上海市", "广东省", "浙江省", "江苏省":
			for _, ci := range p.cities {
				if !cnCities[ci].hasTable {
					t.Errorf("%s of %s has no district table", cnCities[ci].name, p.name)
				}
			}
		}
	}
}

func TestAddressCNCompileErrors(t *testing.T) {
	for _, c := range []struct {
		args    map[string]string
		wantErr string
	}{
		{nil, `address_cn: argument "part": is required`},
		{map[string]string{"part": "street"}, `address_cn: argument "part": want one of province|city|district|rest, got "street"`},
		{map[string]string{"part": "city", "strict": "1"}, `address_cn: argument "strict": unknown argument (takes part)`},
	} {
		_, err := Compile("address_cn", c.args)
		if err == nil || err.Error() != c.wantErr || !errors.Is(err, ErrBadArgument) {
			t.Errorf("%v: err = %v, want %q wrapping ErrBadArgument", c.args, err, c.wantErr)
		}
	}
}

func TestAddressCN(t *testing.T) {
	type want struct{ province, city, district, rest string }
	// e* are the exact errors for one part; "" means the part succeeds.
	cases := []struct {
		in        string
		w         want
		eCity     string
		eDistrict string
		eAll      string // every part fails with this
	}{
		{in: "北京市朝阳区建国路88号", w: want{"北京市", "北京市", "朝阳区", "建国路88号"}},
		{in: "北京朝阳区建国路88号", w: want{"北京市", "北京市", "朝阳区", "建国路88号"}},
		{in: "北京市北京市海淀区中关村大街1号", w: want{"北京市", "北京市", "海淀区", "中关村大街1号"}},
		{in: "上海市 浦东新区, 世纪大道100号", w: want{"上海市", "上海市", "浦东新区", "世纪大道100号"}},
		{in: "广东省深圳市南山区科技园", w: want{"广东省", "深圳市", "南山区", "科技园"}},
		{in: "广东深圳南山区科技园", w: want{"广东省", "深圳市", "南山区", "科技园"}},                // abbreviations
		{in: "深圳市南山区科技园", w: want{"广东省", "深圳市", "南山区", "科技园"}},                 // no province
		{in: "　广东省　广州市　天河区　体育西路１２号　", w: want{"广东省", "广州市", "天河区", "体育西路12号"}}, // full-width
		{in: "浙江省舟山市普陀区沈家门", w: want{"浙江省", "舟山市", "普陀区", "沈家门"}},
		{in: "江苏南通通州区金沙镇", w: want{"江苏省", "南通市", "通州区", "金沙镇"}},
		{in: "江苏省苏州市昆山市玉山镇", w: want{"江苏省", "苏州市", "昆山市", "玉山镇"}}, // county-level city
		{in: "东莞市长安镇", w: want{"广东省", "东莞市", "", "长安镇"}},          // no county level
		{in: "吉林省吉林市船营区", w: want{"吉林省", "吉林市", "", "船营区"},
			eDistrict: `districts of 吉林市 are not bundled: "吉林省吉林市船营区"`},
		{in: "吉林市船营区", w: want{"吉林省", "吉林市", "", "船营区"}, // 吉林 is a province and a city
			eDistrict: `districts of 吉林市 are not bundled: "吉林市船营区"`},
		{in: "海南藏族自治州共和县", w: want{"青海省", "海南藏族自治州", "", "共和县"}, // not 海南省
			eDistrict: `districts of 海南藏族自治州 are not bundled: "海南藏族自治州共和县"`},
		{in: "四川成都武侯区", w: want{"四川省", "成都市", "", "武侯区"},
			eDistrict: `districts of 成都市 are not bundled: "四川成都武侯区"`},
		{in: "湖北省恩施州恩施市", w: want{"湖北省", "恩施土家族苗族自治州", "", "恩施市"},
			eDistrict: `districts of 恩施土家族苗族自治州 are not bundled: "湖北省恩施州恩施市"`},
		{in: "深圳市科技园", w: want{"广东省", "深圳市", "", "科技园"},
			eDistrict: `no district of 深圳市 recognised in "深圳市科技园"`},
		{in: "广东省广州", w: want{"广东省", "广州市", "", ""},
			eDistrict: `no district of 广州市 recognised in "广东省广州"`},
		{in: "广东省某某路1号", w: want{"广东省", "", "", "某某路1号"},
			eCity: `no city of 广东省 recognised in "广东省某某路1号"`, eDistrict: `no city of 广东省 recognised in "广东省某某路1号"`},
		{in: "香港九龙弥敦道", w: want{"香港特别行政区", "", "", "九龙弥敦道"},
			eCity: `cities of 香港特别行政区 are not bundled: "香港九龙弥敦道"`, eDistrict: `cities of 香港特别行政区 are not bundled: "香港九龙弥敦道"`},
		// Hostile and ambiguous inputs: every part fails.
		{in: "", eAll: "empty address"},
		{in: " \u3000, ", eAll: "empty address"},
		{in: "123 Main St, Springfield", eAll: `no province or city recognised in "123 Main St, Springfield"`},
		{in: "ｘｙｚ", eAll: `no province or city recognised in "xyz"`},
		{in: "北京路123号", eAll: `no province or city recognised in "北京路123号"`}, // a street, not Beijing
		{in: "长沙县星沙镇", eAll: `no province or city recognised in "长沙县星沙镇"`},   // a county, not 长沙市
		{in: "普陀区曹杨路", eAll: `no province or city recognised in "普陀区曹杨路" (district 普陀区 alone does not say which city)`},
		{in: "朝阳区建国路", eAll: `no province or city recognised in "朝阳区建国路" (district 朝阳区 alone does not say which city)`},
		{in: "广东省杭州市西湖区", eAll: `city 杭州市 is in 浙江省, not in 广东省: "广东省杭州市西湖区"`},
	}
	fns := map[string]Func{}
	for _, p := range cnPartNames {
		fns[p] = mustCompileB(t, "address_cn", map[string]string{"part": p})
	}
	for _, c := range cases {
		for _, p := range cnPartNames {
			var want, wantErr string
			switch p {
			case "province":
				want = c.w.province
			case "city":
				want, wantErr = c.w.city, c.eCity
			case "district":
				want, wantErr = c.w.district, c.eDistrict
			case "rest":
				want = c.w.rest
			}
			if c.eAll != "" {
				wantErr = c.eAll
			}
			out, err := fns[p].Apply([]byte(c.in), []byte("pre|"))
			switch {
			case wantErr != "":
				if err == nil || err.Error() != wantErr || !errors.Is(err, ErrBadValue) || string(out) != "pre|" {
					t.Errorf("%q part=%s: got %q, %v; want error %q", c.in, p, out, err, wantErr)
				}
			case err != nil || string(out) != "pre|"+want:
				t.Errorf("%q part=%s: got %q, %v; want %q", c.in, p, out, err, want)
			}
		}
	}
}

func TestSplitCN(t *testing.T) {
	a, err := SplitCN("广东深圳南山区科技园")
	if err != nil || a != (CNAddress{Province: "广东省", City: "深圳市", District: "南山区", Rest: "科技园"}) {
		t.Errorf("got %+v, %v", a, err)
	}
	a, err = SplitCN("四川省成都市武侯区")
	if err != nil || a.City != "成都市" || a.District != "" || a.DistrictErr == nil || a.Rest != "武侯区" {
		t.Errorf("got %+v, %v", a, err)
	}
	if _, err := SplitCN("nowhere"); !errors.Is(err, ErrBadValue) {
		t.Errorf("nowhere: %v", err)
	}
}

func TestAddressPattern(t *testing.T) {
	const pat = `^(?P<street>.+?),\s*(?P<city>[^,]+),\s*(?P<postcode>\d{5})(?:,\s*(?P<country>.+))?$`
	for _, c := range []struct {
		part, in, want, wantErr string
	}{
		{"street", "12 Rue de Rivoli, Paris, 75001", "12 Rue de Rivoli", ""},
		{"city", "  12 Rue de Rivoli,   Paris , 75001 ", "Paris", ""},
		{"postcode", "12 Rue de Rivoli, Paris, 75001", "75001", ""},
		{"country", "12 Rue de Rivoli, Paris, 75001, France", "France", ""},
		{"country", "12 Rue de Rivoli, Paris, 75001", "", ""}, // optional group absent
		{"city", "12 Rue de Rivoli, Paris, 7500", "", `address "12 Rue de Rivoli, Paris, 7500" does not match the pattern`},
		{"city", "Paris", "", `address "Paris" does not match the pattern`},
		{"city", " ", "", "empty address"},
	} {
		f := mustCompileB(t, "address", map[string]string{"pattern": pat, "part": c.part})
		runCasesB(t, f, []cleanCaseB{{in: c.in, want: c.want, wantErr: c.wantErr}})
	}
	for _, c := range []struct {
		args    map[string]string
		wantErr string
	}{
		{map[string]string{"part": "city"}, `address: argument "pattern": is required`},
		{map[string]string{"pattern": `^(.+)$`, "part": "city"}, `address: argument "pattern": has no named groups (write parts as (?P<name>...))`},
		{map[string]string{"pattern": `^(?P<city>.+$`, "part": "city"}, "address: argument \"pattern\": error parsing regexp: missing closing ): `^(?P<city>.+$`"},
		{map[string]string{"pattern": pat}, `address: argument "part": is required`},
		{map[string]string{"pattern": pat, "part": "zip"}, `address: argument "part": pattern has no group "zip" (groups: street, city, postcode, country)`},
	} {
		_, err := Compile("address", c.args)
		if err == nil || err.Error() != c.wantErr || !errors.Is(err, ErrBadArgument) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.wantErr)
		}
	}
}

func FuzzAddressCN(f *testing.F) {
	for _, s := range []string{"北京市朝阳区建国路88号", "广东深圳南山区科技园", "吉林市船营区", "东莞市长安镇", "", "普陀区", "广东省杭州市", "北京北京市", "香港九龙", "ｘｙｚ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := SplitCN(s)
		if err != nil {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("%q: %v does not wrap ErrBadValue", s, err)
			}
			return
		}
		// The canonical parts, joined, must split into themselves again.
		again, err := SplitCN(a.Province + a.City + a.District + a.Rest)
		if err != nil || again.Province != a.Province || again.City != a.City || again.District != a.District || again.Rest != a.Rest {
			t.Fatalf("%q -> %+v does not re-split to itself: %+v, %v", s, a, again, err)
		}
		// The Func gives the same parts.
		for i, p := range cnPartNames {
			fn := &addressCNFunc{part: i}
			out, err := fn.Apply([]byte(s), nil)
			want := []string{a.Province, a.City, a.District, a.Rest}[i]
			if err == nil && string(out) != want {
				t.Fatalf("%q part=%s: Func %q, SplitCN %q", s, p, out, want)
			}
		}
	})
}

func FuzzAddressPattern(f *testing.F) {
	f.Add("12 Rue de Rivoli, Paris, 75001")
	f.Add("")
	fn := mustCompileB(f, "address", map[string]string{"pattern": `^(?P<street>.+?),\s*(?P<city>[^,]+),\s*(?P<postcode>\d{5})$`, "part": "postcode"})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := fn.Apply([]byte(s), nil)
		if err != nil {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if len(out) != 5 {
			t.Fatalf("%q: postcode %q", s, out)
		}
	})
}

func BenchmarkAddressCN(b *testing.B) {
	fns := make([]Func, len(cnPartNames))
	for i, p := range cnPartNames {
		fns[i] = mustCompileB(b, "address_cn", map[string]string{"part": p})
	}
	in := []byte("广东省深圳市南山区科技园南区深南大道10000号")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fns {
			var err error
			if dst, err = f.Apply(in, dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
