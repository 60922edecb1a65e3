'use strict';
'require view';
'require rpc';
'require poll';
'require ui';
'require dom';

// wanmon status in LuCI: links with their telemetry, the route, force and auto. Every value is
// put into the page as text by E(), never as markup.

var callStatus = rpc.declare({ object: 'wanmon', method: 'status' });
var callForce = rpc.declare({ object: 'wanmon', method: 'force', params: [ 'link' ] });
var callAuto = rpc.declare({ object: 'wanmon', method: 'auto' });
// Links whose LAN traffic the firewall would not masquerade (the daemon's status says so, from
// the init script's check), each with the commands that fix it.
function firewallWarnings(status) {
	var links = ((status && status.links) || []).filter(function(l) { return l.warning; });
	if (!links.length)
		return E('div', {});
	return E('div', { 'class': 'alert-message warning' }, [
		E('p', {}, [ _('These links would carry no LAN traffic as the firewall is set up (Network → Firewall):') ]),
		E('ul', {}, links.map(function(l) {
			return E('li', {}, [ l.name + ' (' + l.device + '): ', E('code', {}, [ l.warning ]) ]);
		}))
	]);
}

function value(v, unit) {
	return (v === null || v === undefined) ? '-' : v + (unit || '');
}

function stateBadge(state) {
	var colours = { up: '#2e7d32', dead: '#c62828', pending: '#b27b00', disabled: '#777' };
	return E('span', {
		'style': 'color:#fff;border-radius:1em;padding:0 .6em;background:' + (colours[state] || '#777')
	}, [ state.toUpperCase() ]);
}

return view.extend({
	load: function() {
		return callStatus();
	},

	act: function(promise) {
		return promise.then(function(result) {
			if (result && result.error)
				ui.addNotification(null, E('p', [ _('Refused: ') + result.error ]), 'danger');
			else
				ui.addNotification(null, E('p', [ (result && result.message) || _('Done') ]), 'info');
		});
	},

	table: function(status) {
		if (!status || status.error)
			return E('p', { 'class': 'alert-message warning' }, [ _('wanmon is not answering: ') + ((status && status.error) || '') ]);
		var self = this;
		var rows = [ E('tr', { 'class': 'tr table-titles' }, [
			E('th', { 'class': 'th' }, [ _('Link') ]), E('th', { 'class': 'th' }, [ _('State') ]),
			E('th', { 'class': 'th' }, [ _('Latency') ]), E('th', { 'class': 'th' }, [ _('Jitter') ]),
			E('th', { 'class': 'th' }, [ _('Loss') ]), E('th', { 'class': 'th' }, [ _('Score') ]),
			E('th', { 'class': 'th' }, [ '' ])
		]) ];
		status.links.forEach(function(link) {
			rows.push(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, [ link.label + ' (' + link.device + ')' + (link.current ? ' - ' + _('default route') : '') ]),
				E('td', { 'class': 'td' }, [ stateBadge(link.state), ' ' + value(link.cause || link.problem, '') ]),
				E('td', { 'class': 'td' }, [ value(link.latency_ms, ' ms') ]),
				E('td', { 'class': 'td' }, [ value(link.jitter_ms, ' ms') ]),
				E('td', { 'class': 'td' }, [ value(link.loss_percent, ' %') ]),
				E('td', { 'class': 'td' }, [ value(link.score) ]),
				E('td', { 'class': 'td' }, [ E('button', {
					'class': 'btn cbi-button',
					'click': ui.createHandlerFn(self, function() { return self.act(callForce(link.name)); })
				}, [ _('Force') ]) ])
			]));
		});
		var mode = status.mode === 'auto' ? _('automatic') : _('forced to ') + status.forced;
		return E('div', {}, [
			E('p', {}, [ _('Mode: ') + mode + ', ' + _('route: ') + value(status.current) ]),
			E('table', { 'class': 'table' }, rows),
			E('button', {
				'class': 'btn cbi-button-action',
				'click': ui.createHandlerFn(self, function() { return self.act(callAuto()); })
			}, [ _('Back to automatic') ]),
			E('h3', {}, [ _('Recent decisions') ]),
			E('ul', {}, (status.decisions || []).slice(0, 10).map(function(d) {
				return E('li', {}, [ d.age_s + ' s ago: ' + d.reason ]);
			}))
		]);
	},

	render: function(loaded) {
		var self = this;
		var box = E('div', {}, [ firewallWarnings(loaded), this.table(loaded) ]);
		poll.add(function() {
			return callStatus().then(function(fresh) {
				dom.content(box, [ firewallWarnings(fresh), self.table(fresh) ]);
			});
		}, 5);
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('WAN failover (wanmon)') ]), box
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
