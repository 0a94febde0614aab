// Package demodata generates examples/merge: two legacy systems to be
// merged into one new schema (a POS with a GBK member export and a MariaDB
// order database; a web shop with an XLSX customer list and a JSON Lines
// order export), with faults planted on purpose, and the outcome a correct
// migration must give. Everything is derived from a fixed seed, so the
// committed files and the figures in expected.md are reproducible, and the
// figures come from what the generator planted, not from running the engine.
package demodata

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// The two systems, in the order the spec lists them (pos-a ranks first).
const (
	SystemA = "pos-a"
	SystemB = "shop-b"
)

// Files of examples/merge written by the generator.
const (
	MembersA   = "members_a.csv"
	SystemASQL = "system_a.sql"
	CustomersB = "customers_b.xlsx"
	OrdersB    = "orders_b.jsonl"
	Expected   = "expected.md"
	SheetB     = "customers"
)

// Filter reasons of the spec.
const (
	ReasonTestAccount = "test account"
	ReasonVoided      = "voided order"
)

// RuleUnresolvedRef is the quarantine rule of a reference to a record that
// is not in the id map (the loader quarantines it while finalizing).
const RuleUnresolvedRef = "unresolved_ref"

// Sizes.
const (
	nMembersA   = 300
	nCustomersB = 200
	nOrdersA    = 1500
	nOrdersB    = 1200
	nCrossPhone = 25 // same person in both systems, matched by phone
	nCrossEmail = 15 // matched by e-mail
	nDupA       = 3  // registered twice in A, matched by phone
	nDupB       = 3  // registered twice in B, matched by e-mail
	nVoided     = 12
	nCollisions = 5
)

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

// Customer is one source customer row, raw as written and canonical as a
// correct cleaning gives it ("" = NULL).
type Customer struct {
	System, Table string
	OldID, Ref    string // old id (member no / customer id) and source reference
	Raw           map[string]string
	Name          string
	Phone, Email  string
	Joined        string // ISO date
	Level         string
	Province      string
	City          string
	District      string
	Address       string
	Updated       time.Time

	Filtered  string // filter reason, or ""
	QRule     string // quarantine rule and column, or ""
	QColumn   string
	Survivor  *Customer // after dedupe; itself when it survives
	MergedBy  string    // match key that joined it to its survivor
	orderable bool
}

// OK reports whether the row reaches the target table (loaded or merged).
func (c *Customer) OK() bool { return c.Filtered == "" && c.QRule == "" }

// Order is one source order.
type Order struct {
	System, Table string
	OldID, Ref    string
	OrderNo       string
	CustomerOld   string // referenced customer's old id
	Status        string // target status
	RawStatus     string
	TotalFen      int64
	RawTotal      string
	RawCreated    string
	Items         []*Item
	Filtered      string
	QRule         string
	QColumn       string
	Collides      bool
}

// Item is one order line.
type Item struct {
	System, Table string
	OldID, Ref    string
	OrderOld      string
	Line          int
	SKU           string
	Qty           int
	PriceFen      int64
	QRule         string
	QColumn       string
}

// Data is the generated dataset.
type Data struct {
	CustomersA, CustomersB []*Customer
	OrdersA, OrdersB       []*Order
	ItemsA, ItemsB         []*Item
	GapOrderID             int // A order id deleted from orders, still named by one line
}

type gen struct {
	r      *rand.Rand
	phones map[string]bool
	emails map[string]bool
	times  map[int64]bool
}

var surnames = []struct{ han, pinyin string }{
	{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"}, {"杨", "yang"}, {"黄", "huang"},
	{"赵", "zhao"}, {"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"}, {"马", "ma"}, {"朱", "zhu"},
	{"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"高", "gao"}, {"林", "lin"}, {"罗", "luo"},
}

var givenNames = []struct{ han, pinyin string }{
	{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"秀英", "xiuying"}, {"敏", "min"}, {"静", "jing"}, {"丽", "li"},
	{"强", "qiang"}, {"磊", "lei"}, {"军", "jun"}, {"洋", "yang"}, {"勇", "yong"}, {"艳", "yan"}, {"杰", "jie"},
	{"娟", "juan"}, {"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"秀兰", "xiulan"}, {"霞", "xia"}, {"平", "ping"},
	{"刚", "gang"}, {"桂英", "guiying"}, {"浩然", "haoran"}, {"子涵", "zihan"}, {"欣怡", "xinyi"}, {"梓萱", "zixuan"}, {"宇轩", "yuxuan"},
}

var mailDomains = []string{"163.com", "qq.com", "126.com", "sina.com", "outlook.com", "foxmail.com"}

// mobilePrefixes are mainland mobile ranges libphonenumber accepts.
var mobilePrefixes = []string{"134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182", "183", "186", "187", "188"}

// places are addresses whose province, city and district the bundled
// division table recognises (districts are bundled for these provinces).
var places = []struct {
	province, city, district string
	streets                  []string
	noProvince               bool // written without the province, as people do
}{
	{"北京市", "北京市", "朝阳区", []string{"建国路", "朝阳北路", "望京街"}, false},
	{"北京市", "北京市", "海淀区", []string{"中关村大街", "学院路", "西三环北路"}, false},
	{"上海市", "上海市", "浦东新区", []string{"世纪大道", "张杨路", "锦绣路"}, false},
	{"上海市", "上海市", "徐汇区", []string{"漕溪北路", "天钥桥路"}, false},
	{"广东省", "深圳市", "南山区", []string{"科技园路", "南海大道", "后海大道"}, false},
	{"广东省", "广州市", "天河区", []string{"天河路", "体育西路", "珠江新城华夏路"}, false},
	{"广东省", "深圳市", "福田区", []string{"深南大道", "福华三路"}, true},
	{"浙江省", "杭州市", "西湖区", []string{"文三路", "天目山路", "古墩路"}, false},
	{"江苏省", "南京市", "鼓楼区", []string{"中山路", "湖南路"}, false},
	{"江苏省", "南京市", "玄武区", []string{"珠江路", "北京东路"}, true},
}

type person struct {
	name, pinyin string
}

func (g *gen) person() person {
	s := surnames[g.r.IntN(len(surnames))]
	n := givenNames[g.r.IntN(len(givenNames))]
	return person{s.han + n.han, s.pinyin + "." + n.pinyin}
}

func (g *gen) phone() string {
	for {
		p := "+86" + mobilePrefixes[g.r.IntN(len(mobilePrefixes))] + fmt.Sprintf("%08d", g.r.IntN(100000000))
		if !g.phones[p] {
			g.phones[p] = true
			return p
		}
	}
}

func (g *gen) email(p person) string {
	for {
		e := fmt.Sprintf("%s%d@%s", p.pinyin, 10+g.r.IntN(9990), mailDomains[g.r.IntN(len(mailDomains))])
		if !g.emails[e] {
			g.emails[e] = true
			return e
		}
	}
}

// updated is a distinct wall-clock time in Shanghai in the first half of
// 2024 (never midnight), one that an Excel serial carries exactly.
func (g *gen) updated() time.Time {
	for {
		s := int64(g.r.IntN(182 * 86400))
		if s%86400 == 0 || g.times[s] {
			continue
		}
		t := time.Date(2024, 1, 1, 0, 0, 0, 0, shanghai).Add(time.Duration(s) * time.Second)
		if _, ok := excelSerial(t); !ok {
			continue
		}
		g.times[s] = true
		return t
	}
}

func (g *gen) date(fromYear, toYear int) time.Time {
	start := time.Date(fromYear, 1, 1, 0, 0, 0, 0, time.UTC)
	days := int(time.Date(toYear+1, 1, 1, 0, 0, 0, 0, time.UTC).Sub(start).Hours() / 24)
	return start.AddDate(0, 0, g.r.IntN(days))
}

// excelSerial is t's wall clock as an Excel (1900 system) serial, and
// whether reading it back the way the extractor does (time of day rounded
// to the microsecond) gives t to the second.
func excelSerial(t time.Time) (float64, bool) {
	wall := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	days := wall.Sub(time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)).Hours() / 24
	secs := t.Hour()*3600 + t.Minute()*60 + t.Second()
	v := days + float64(secs)/86400
	whole := math.Floor(v)
	micros := int64(math.Round((v - whole) * 86_400_000_000))
	return v, whole == days && micros == int64(secs)*1_000_000
}

func (g *gen) place() (prov, city, dist, rest, text string) {
	p := places[g.r.IntN(len(places))]
	rest = fmt.Sprintf("%s%d号", p.streets[g.r.IntN(len(p.streets))], 1+g.r.IntN(300))
	switch {
	case p.province == p.city: // municipality: 北京市朝阳区…
		text = p.province + p.district + rest
	case p.noProvince:
		text = p.city + p.district + rest
	default:
		text = p.province + p.city + p.district + rest
	}
	return p.province, p.city, p.district, rest, text
}

// Raw spellings of a canonical phone and e-mail.
func formatPhoneA(r *rand.Rand, e164 string) string {
	n := strings.TrimPrefix(e164, "+86")
	switch r.IntN(3) {
	case 0:
		return n
	case 1:
		return n[:3] + "-" + n[3:7] + "-" + n[7:]
	}
	return "+86 " + n[:3] + " " + n[3:7] + " " + n[7:]
}

func formatPhoneB(r *rand.Rand, e164 string) string {
	n := strings.TrimPrefix(e164, "+86")
	if r.IntN(2) == 0 {
		return "(+86) " + n[:3] + " " + n[3:7] + " " + n[7:]
	}
	return n[:3] + " " + n[3:7] + " " + n[7:]
}

func formatEmail(r *rand.Rand, e string) string {
	local, domain, _ := strings.Cut(e, "@")
	switch r.IntN(5) {
	case 0:
		return strings.ToUpper(local[:1]) + local[1:] + "@" + domain
	case 1:
		return local + "@" + strings.ToUpper(domain)
	case 2:
		return " " + e + " "
	case 3:
		return strings.ToUpper(local) + "@" + domain + " "
	}
	return e
}

var levels = map[string]string{"1": "regular", "2": "silver", "3": "gold"}

func (g *gen) level() string {
	switch x := g.r.IntN(10); {
	case x < 6:
		return "1"
	case x < 9:
		return "2"
	}
	return "3"
}

// kinds of planted customer rows.
const (
	kPlain = iota
	kTest
	kBadLevel
	kBadPhone
	kBadEmail
	kDup        // first of a within-system pair
	kDupTwin    // second of it
	kCrossPhone // A or B side of a cross-system pair matched by phone
	kCrossEmail
)

type slot struct {
	kind int
	p    person
	pair int // index of the pair for dup/cross kinds
}

// Generate builds the dataset from the fixed seed.
func Generate() *Data {
	g := &gen{r: rand.New(rand.NewPCG(20240501, 7)), phones: map[string]bool{}, emails: map[string]bool{}, times: map[int64]bool{}}
	d := &Data{}

	// Shared people: the same person in both systems.
	type shared struct {
		p              person
		phone, email   string // A's
		phoneB, emailB string // B's
	}
	var cross []shared
	for i := 0; i < nCrossPhone+nCrossEmail; i++ {
		p := g.person()
		s := shared{p: p, phone: g.phone(), email: g.email(p)}
		if i < nCrossPhone {
			// Same phone; the shop has another mailbox, and a third of the
			// POS members gave no e-mail at all.
			s.phoneB, s.emailB = s.phone, g.email(p)
			if i%3 == 0 {
				s.email = ""
			}
		} else {
			// Same e-mail; a new number in the shop, or none.
			s.emailB = s.email
			if i%2 == 0 {
				s.phoneB = g.phone()
			}
		}
		cross = append(cross, s)
	}

	// System A: member export.
	var slotsA []slot
	for i := 0; i < 3; i++ {
		slotsA = append(slotsA, slot{kind: kTest})
	}
	slotsA = append(slotsA, slot{kind: kBadLevel}, slot{kind: kBadPhone})
	for i := 0; i < nDupA; i++ {
		p := g.person()
		slotsA = append(slotsA, slot{kind: kDup, p: p, pair: i}, slot{kind: kDupTwin, p: p, pair: i})
	}
	for i := range cross {
		k := kCrossPhone
		if i >= nCrossPhone {
			k = kCrossEmail
		}
		slotsA = append(slotsA, slot{kind: k, pair: i})
	}
	for len(slotsA) < nMembersA {
		slotsA = append(slotsA, slot{kind: kPlain, p: g.person()})
	}
	g.r.Shuffle(len(slotsA), func(i, j int) { slotsA[i], slotsA[j] = slotsA[j], slotsA[i] })
	// Twins: the first registration gets the lower member number.
	dupPhone := map[int]string{}
	seenDup := map[int]bool{}
	for i, s := range slotsA {
		if s.kind == kDup || s.kind == kDupTwin {
			if !seenDup[s.pair] {
				slotsA[i].kind = kDup
				seenDup[s.pair] = true
			} else {
				slotsA[i].kind = kDupTwin
			}
		}
	}
	testNames := []string{"测试账号01", "测试门店收银", "测试员工"}
	tests := 0
	for i, s := range slotsA {
		c := &Customer{System: SystemA, Table: "customers_a", OldID: fmt.Sprintf("88000%05d", 10001+i*3), Ref: fmt.Sprintf("line %d", i+2)}
		c.Updated = g.updated()
		joined := g.date(2015, 2023)
		c.Joined = joined.Format("2006-01-02")
		code := g.level()
		c.Level = levels[code]
		p := s.p
		switch s.kind {
		case kCrossPhone, kCrossEmail:
			p = cross[s.pair].p
			c.Phone, c.Email = cross[s.pair].phone, cross[s.pair].email
		case kDup:
			c.Phone = g.phone()
			dupPhone[s.pair] = c.Phone
			c.Email = "" // gave no e-mail the first time
		case kDupTwin:
			c.Phone = dupPhone[s.pair]
			c.Email = g.email(p)
		case kTest:
			p = person{testNames[tests], "test"}
			tests++
			c.Phone = g.phone()
			c.Filtered = ReasonTestAccount
		default:
			if p.name == "" {
				p = g.person()
			}
			c.Phone = g.phone()
			if g.r.IntN(10) < 7 {
				c.Email = g.email(p)
			}
		}
		c.Name = p.name
		c.Raw = map[string]string{"地址": ""}
		if g.r.IntN(10) > 0 { // one in ten left the address blank
			var text string
			c.Province, c.City, c.District, c.Address, text = g.place()
			c.Raw["地址"] = text
		}
		c.Raw["会员号"] = c.OldID
		c.Raw["姓名"] = c.Name
		c.Raw["手机"] = formatPhoneA(g.r, c.Phone)
		c.Raw["邮箱"] = ""
		if c.Email != "" {
			c.Raw["邮箱"] = formatEmail(g.r, c.Email)
		}
		c.Raw["入会日期"] = fmt.Sprintf("%d/%d/%d", joined.Year(), joined.Month(), joined.Day())
		c.Raw["等级"] = code
		c.Raw["更新时间"] = c.Updated.Format("2006-01-02 15:04:05")
		switch s.kind {
		case kBadLevel:
			c.Raw["等级"] = "7"
			c.QRule, c.QColumn = "clean", "level"
		case kBadPhone:
			c.Raw["手机"] = "见备注"
			c.QRule, c.QColumn = "clean", "phone"
		}
		c.orderable = c.OK()
		d.CustomersA = append(d.CustomersA, c)
	}

	// System B: customer sheet.
	var slotsB []slot
	slotsB = append(slotsB, slot{kind: kTest}, slot{kind: kTest}, slot{kind: kBadEmail})
	for i := 0; i < nDupB; i++ {
		p := g.person()
		slotsB = append(slotsB, slot{kind: kDup, p: p, pair: i}, slot{kind: kDupTwin, p: p, pair: i})
	}
	for i := range cross {
		k := kCrossPhone
		if i >= nCrossPhone {
			k = kCrossEmail
		}
		slotsB = append(slotsB, slot{kind: k, pair: i})
	}
	for len(slotsB) < nCustomersB {
		slotsB = append(slotsB, slot{kind: kPlain, p: g.person()})
	}
	g.r.Shuffle(len(slotsB), func(i, j int) { slotsB[i], slotsB[j] = slotsB[j], slotsB[i] })
	seenDup = map[int]bool{}
	dupEmail := map[int]string{}
	for i, s := range slotsB {
		if s.kind == kDup || s.kind == kDupTwin {
			if !seenDup[s.pair] {
				slotsB[i].kind = kDup
				seenDup[s.pair] = true
			} else {
				slotsB[i].kind = kDupTwin
			}
		}
	}
	testNamesB := []string{"TEST user", "test-qa 2"}
	tests = 0
	for i, s := range slotsB {
		c := &Customer{System: SystemB, Table: "customers_b", OldID: fmt.Sprintf("C-%04d", i+1), Ref: fmt.Sprintf("row %d", i+2)}
		c.Updated = g.updated()
		signup := g.date(2019, 2024)
		c.Joined = signup.Format("2006-01-02")
		p := s.p
		switch s.kind {
		case kCrossPhone, kCrossEmail:
			p = cross[s.pair].p
			c.Phone, c.Email = cross[s.pair].phoneB, cross[s.pair].emailB
		case kDup:
			c.Email = g.email(p)
			dupEmail[s.pair] = c.Email
			c.Phone = g.phone()
		case kDupTwin:
			c.Email = dupEmail[s.pair]
			if s.pair%2 == 0 {
				c.Phone = g.phone() // signed up again with a new number
			}
		case kTest:
			p = person{testNamesB[tests], "test"}
			tests++
			c.Email = g.email(person{pinyin: "qa"})
			c.Filtered = ReasonTestAccount
		default:
			if p.name == "" {
				p = g.person()
			}
			c.Email = g.email(p)
			if g.r.IntN(10) < 9 {
				c.Phone = g.phone()
			}
		}
		c.Name = p.name
		c.Raw = map[string]string{"customer_id": c.OldID, "name": c.Name, "email": formatEmail(g.r, c.Email),
			"signup": signup.Format("02-01-2006"),
			// As the extractor reads the date-time cell back.
			"updated_at": c.Updated.Format("2006-01-02T15:04:05")}
		if c.Phone != "" {
			c.Raw["mobile"] = formatPhoneB(g.r, c.Phone)
		}
		if s.kind == kBadEmail {
			local, dom, _ := strings.Cut(c.Email, "@")
			c.Raw["email"] = local + "@@" + dom
			c.QRule, c.QColumn = "clean", "email"
		}
		c.orderable = c.OK()
		d.CustomersB = append(d.CustomersB, c)
	}

	d.dedupe()
	d.orders(g)
	return d
}

// dedupe joins rows that share a cleaned phone or e-mail and picks the
// newest of each group; the planted data has groups of two, each joined by
// exactly one key, so the expected outcome does not hinge on tie rules.
func (d *Data) dedupe() {
	all := append(slices.Clone(d.CustomersA), d.CustomersB...)
	byPhone, byEmail := map[string][]*Customer{}, map[string][]*Customer{}
	for _, c := range all {
		c.Survivor = c
		if !c.OK() {
			continue
		}
		if c.Phone != "" {
			byPhone[c.Phone] = append(byPhone[c.Phone], c)
		}
		if c.Email != "" {
			byEmail[c.Email] = append(byEmail[c.Email], c)
		}
	}
	pair := func(m map[string][]*Customer, key string) {
		for _, v := range m {
			if len(v) == 1 {
				continue
			}
			if len(v) != 2 {
				panic(fmt.Sprintf("demodata: %d rows share a %s", len(v), key))
			}
			a, b := v[0], v[1]
			if a.Survivor != a || b.Survivor != b {
				panic("demodata: a row is joined by two keys")
			}
			win, lose := a, b
			if b.Updated.After(a.Updated) {
				win, lose = b, a
			}
			lose.Survivor, lose.MergedBy = win, key
		}
	}
	pair(byPhone, "phone")
	pair(byEmail, "email")
}

var skus = func() (s []struct {
	sku   string
	price int64
}) {
	r := rand.New(rand.NewPCG(7, 20240501))
	for i := 0; i < 120; i++ {
		s = append(s, struct {
			sku   string
			price int64
		}{fmt.Sprintf("SKU-%d", 1001+i), int64(99+r.IntN(300)) * 10})
	}
	return s
}()

func orderable(cs []*Customer) []*Customer {
	var out []*Customer
	for _, c := range cs {
		if c.orderable {
			out = append(out, c)
		}
	}
	return out
}

func (g *gen) items(o *Order, next *int, ref func(k int) string) {
	n := 1 + g.r.IntN(4)
	for k := 0; k < n; k++ {
		s := skus[g.r.IntN(len(skus))]
		*next++
		it := &Item{System: o.System, OrderOld: o.OldID, Line: k + 1, SKU: s.sku, Qty: 1 + g.r.IntN(3), PriceFen: s.price}
		it.OldID, it.Ref = ref(k), ""
		o.Items = append(o.Items, it)
		o.TotalFen += int64(it.Qty) * it.PriceFen
	}
}

func (d *Data) orders(g *gen) {
	// A: ids 1..nOrdersA+1 with one id missing (an order deleted in the
	// POS whose line is still there).
	ids := make([]int, 0, nOrdersA)
	d.GapOrderID = 700 + g.r.IntN(200)
	for id := 1; len(ids) < nOrdersA; id++ {
		if id != d.GapOrderID {
			ids = append(ids, id)
		}
	}
	// Distinct planted positions.
	pick := g.r.Perm(len(ids))
	voided := map[int]bool{}
	for _, k := range pick[:nVoided] {
		voided[ids[k]] = true
	}
	badDate, noCustomer := ids[pick[nVoided]], ids[pick[nVoided+1]]
	collide := map[int]bool{}
	for _, k := range pick[nVoided+2 : nVoided+2+nCollisions] {
		collide[ids[k]] = true
	}
	negQty := ids[pick[nVoided+2+nCollisions]]
	custA := orderable(d.CustomersA)
	statusA := []struct{ code, status string }{{"C", "completed"}, {"C", "completed"}, {"C", "completed"}, {"C", "completed"},
		{"C", "completed"}, {"S", "shipped"}, {"S", "shipped"}, {"P", "pending"}, {"R", "refunded"}}
	itemID := 0
	var collideNos []string
	for _, id := range ids {
		o := &Order{System: SystemA, Table: "orders_a", OldID: strconv.Itoa(id), Ref: fmt.Sprintf("id=%d", id),
			OrderNo: strconv.Itoa(100000 + id)}
		o.CustomerOld = custA[g.r.IntN(len(custA))].OldID
		st := statusA[g.r.IntN(len(statusA))]
		if collide[id] {
			st = statusA[0]
			o.Collides = true
			collideNos = append(collideNos, o.OrderNo)
		}
		o.RawStatus, o.Status = st.code, st.status
		at := time.Date(2023, 1, 1, 8, 0, 0, 0, shanghai).Add(time.Duration(g.r.IntN(540*86400)) * time.Second)
		o.RawCreated = fmt.Sprintf("%d/%d/%d %d:%02d:%02d", at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second())
		switch {
		case voided[id]:
			o.RawStatus, o.Status, o.Filtered = "X", "", ReasonVoided
			o.TotalFen = int64(1+g.r.IntN(500)) * 100 // voided at the till: no lines were kept
		case id == badDate:
			o.RawCreated = "2023/2/30 11:20:00"
			o.QRule, o.QColumn = "clean", "ordered_at"
			o.TotalFen = 5990
		case id == noCustomer:
			o.CustomerOld = "8800099999" // a member deleted from the member list
			o.QRule, o.QColumn = RuleUnresolvedRef, "customer_id"
			o.TotalFen = 12800
		default:
			g.items(o, &itemID, func(int) string { return "" })
		}
		d.OrdersA = append(d.OrdersA, o)
		for _, it := range o.Items {
			d.ItemsA = append(d.ItemsA, it)
		}
		if id == d.GapOrderID-1 {
			// The deleted order's line.
			d.ItemsA = append(d.ItemsA, &Item{System: SystemA, OrderOld: strconv.Itoa(d.GapOrderID), Line: 1, SKU: skus[3].sku, Qty: 1,
				PriceFen: skus[3].price, QRule: RuleUnresolvedRef, QColumn: "order_id"})
		}
		if id == negQty {
			o.Items[0].Qty = -1
			o.Items[0].QRule, o.Items[0].QColumn = "range", "qty"
		}
	}
	for k, it := range d.ItemsA {
		it.Table = "items_a"
		it.OldID = strconv.Itoa(k + 1)
		it.Ref = "id=" + it.OldID
	}

	// B: one JSON object per order, the lines inside.
	custB := orderable(d.CustomersB)
	statusB := []string{"completed", "completed", "completed", "completed", "shipped", "shipped", "paid", "pending", "refunded"}
	pickB := g.r.Perm(nOrdersB)
	collideAt := map[int]string{}
	for k, no := range collideNos {
		collideAt[pickB[k]] = no
	}
	badTotal, negQtyB := pickB[nCollisions], pickB[nCollisions+1]
	lineID := 0
	for i := 0; i < nOrdersB; i++ {
		o := &Order{System: SystemB, Table: "orders_b", Ref: fmt.Sprintf("line %d", i+1), OrderNo: strconv.Itoa(300001 + i)}
		if no, ok := collideAt[i]; ok {
			o.OrderNo, o.Collides = no, true
		}
		o.OldID = o.OrderNo
		o.CustomerOld = custB[g.r.IntN(len(custB))].OldID
		o.Status = statusB[g.r.IntN(len(statusB))]
		if o.Collides {
			o.Status = "completed"
		}
		o.RawStatus = o.Status
		at := g.date(2023, 2024)
		o.RawCreated = at.Format("02-01-2006")
		if i == badTotal {
			o.RawTotal = "待定" // a draft the shop never priced; no lines
			o.QRule, o.QColumn = "cast", "total"
		} else {
			g.items(o, &lineID, func(int) string { return fmt.Sprintf("L%07d", lineID) })
			o.RawTotal = fmt.Sprintf("%d.%02d", o.TotalFen/100, o.TotalFen%100)
		}
		for k, it := range o.Items {
			it.Table, it.Ref = "items_b", fmt.Sprintf("line %d item %d", i+1, k)
			d.ItemsB = append(d.ItemsB, it)
		}
		if i == negQtyB {
			o.Items[len(o.Items)-1].Qty = -3
			o.Items[len(o.Items)-1].QRule, o.Items[len(o.Items)-1].QColumn = "range", "qty"
		}
		d.OrdersB = append(d.OrdersB, o)
	}
}

// Write writes the dataset's files into dir.
func (d *Data) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]func() ([]byte, error){
		MembersA: d.membersCSV, SystemASQL: d.systemASQL, CustomersB: d.customersXLSX,
		OrdersB: d.ordersJSONL, Expected: func() ([]byte, error) { return []byte(d.Expect().Markdown()), nil },
	}
	for name, f := range files {
		b, err := f()
		if err != nil {
			return fmt.Errorf("demodata: %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("demodata: %w", err)
		}
	}
	return nil
}

// CSV header of A's member export.
var membersHeader = []string{"会员号", "姓名", "手机", "邮箱", "入会日期", "等级", "地址", "更新时间"}

func (d *Data) membersCSV() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = true // a Windows export
	if err := w.Write(membersHeader); err != nil {
		return nil, err
	}
	for _, c := range d.CustomersA {
		rec := make([]string, len(membersHeader))
		for i, h := range membersHeader {
			rec[i] = c.Raw[h]
		}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return simplifiedchinese.GBK.NewEncoder().Bytes(b.Bytes())
}

func (d *Data) systemASQL() ([]byte, error) {
	var b strings.Builder
	b.WriteString(`-- System A ("pos-a"): orders and order lines of the legacy POS (MariaDB).
-- Generated by services/cutover/demodata (CUTOVER_REGEN_DEMO=1); do not edit.
-- Load into an empty database: no CREATE DATABASE / USE here.
SET NAMES utf8mb4;
DROP TABLE IF EXISTS order_items;
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
  id         int NOT NULL PRIMARY KEY,
  member_no  varchar(10) NOT NULL,
  order_no   varchar(12) NOT NULL,
  amount_fen int NOT NULL,
  created    varchar(20) NOT NULL COMMENT 'legacy: local time as text, Y/M/D H:MM:SS',
  status     char(1) NOT NULL COMMENT 'P pending, S shipped, C completed, R refunded, X voided',
  KEY by_member (member_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE order_items (
  id        int NOT NULL PRIMARY KEY,
  order_id  int NOT NULL,
  line_no   int NOT NULL,
  sku       varchar(16) NOT NULL,
  qty       int NOT NULL,
  price_fen int NOT NULL,
  KEY by_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
`)
	const chunk = 250
	for i := 0; i < len(d.OrdersA); i += chunk {
		b.WriteString("INSERT INTO orders (id, member_no, order_no, amount_fen, created, status) VALUES\n")
		for k, o := range d.OrdersA[i:min(i+chunk, len(d.OrdersA))] {
			if k > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "(%s, '%s', '%s', %d, '%s', '%s')", o.OldID, o.CustomerOld, o.OrderNo, o.TotalFen, o.RawCreated, o.RawStatus)
		}
		b.WriteString(";\n")
	}
	for i := 0; i < len(d.ItemsA); i += chunk {
		b.WriteString("INSERT INTO order_items (id, order_id, line_no, sku, qty, price_fen) VALUES\n")
		for k, it := range d.ItemsA[i:min(i+chunk, len(d.ItemsA))] {
			if k > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "(%s, %s, %d, '%s', %d, %d)", it.OldID, it.OrderOld, it.Line, it.SKU, it.Qty, it.PriceFen)
		}
		b.WriteString(";\n")
	}
	return []byte(b.String()), nil
}

// XLSX columns of B's customer sheet; updated_at holds date-time cells.
var customersBHeader = []string{"customer_id", "name", "mobile", "email", "signup", "updated_at"}

func (d *Data) customersXLSX() ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", SheetB); err != nil {
		return nil, err
	}
	style, err := f.NewStyle(&excelize.Style{NumFmt: 22}) // m/d/yy h:mm
	if err != nil {
		return nil, err
	}
	for k, h := range customersBHeader {
		cell, _ := excelize.CoordinatesToCellName(k+1, 1)
		if err := f.SetCellStr(SheetB, cell, h); err != nil {
			return nil, err
		}
	}
	for i, c := range d.CustomersB {
		row := i + 2
		for k, h := range customersBHeader {
			cell, _ := excelize.CoordinatesToCellName(k+1, row)
			if h == "updated_at" {
				v, _ := excelSerial(c.Updated)
				if err := f.SetCellFloat(SheetB, cell, v, -1, 64); err != nil {
					return nil, err
				}
				if err := f.SetCellStyle(SheetB, cell, cell, style); err != nil {
					return nil, err
				}
				continue
			}
			if v := c.Raw[h]; v != "" {
				if err := f.SetCellStr(SheetB, cell, v); err != nil {
					return nil, err
				}
			}
		}
	}
	buf, err := f.WriteToBuffer()
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type jsonItem struct {
	ID    string `json:"id"`
	Line  int    `json:"line"`
	SKU   string `json:"sku"`
	Qty   int    `json:"qty"`
	Price string `json:"price"`
}

type jsonOrder struct {
	OrderNo  string `json:"order_no"`
	Customer struct {
		ID string `json:"id"`
	} `json:"customer"`
	Total  string     `json:"total"`
	Date   string     `json:"date"`
	Status string     `json:"status"`
	Items  []jsonItem `json:"items"`
}

func (d *Data) ordersJSONL() ([]byte, error) {
	var b bytes.Buffer
	for _, o := range d.OrdersB {
		j := jsonOrder{OrderNo: o.OrderNo, Total: o.RawTotal, Date: o.RawCreated, Status: o.RawStatus, Items: []jsonItem{}}
		j.Customer.ID = o.CustomerOld
		for _, it := range o.Items {
			j.Items = append(j.Items, jsonItem{ID: it.OldID, Line: it.Line, SKU: it.SKU, Qty: it.Qty,
				Price: fmt.Sprintf("%d.%02d", it.PriceFen/100, it.PriceFen%100)})
		}
		line, err := json.Marshal(j)
		if err != nil {
			return nil, err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
