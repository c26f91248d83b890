// fastify-two-factor: the few behaviours that need JavaScript. Everything works without it;
// this adds copy and print buttons and moves focus to the new step or error after a swap.
(function () {
  'use strict'

  // An element's data-focus names what takes focus once it is on screen: its error, its
  // notice or its first field.
  function focusTarget (card) {
    var selector = card && card.getAttribute('data-focus')
    var target = selector ? document.querySelector(selector) : null
    if (target) target.focus()
  }

  // What was just swapped in. htmx 4 gives the request context as event.detail.ctx, whose
  // target is the element the response replaced; an outerHTML swap has detached it, and the
  // new element carries its id. (event.target is the element that made the request, or the
  // new content when that element was swapped away.)
  function swappedIn (event) {
    var ctx = event.detail && event.detail.ctx
    var target = ctx && ctx.target
    if (target && !target.isConnected && target.id) target = document.getElementById(target.id)
    if (target && target.isConnected) return target
    return event.target instanceof Element && event.target.isConnected ? event.target : null
  }

  function copyText (button) {
    var source = document.querySelector(button.getAttribute('data-copy'))
    if (!source || !navigator.clipboard) return
    var text = source.tagName === 'OL'
      ? Array.prototype.map.call(source.querySelectorAll('li'), function (li) { return li.textContent.trim() }).join('\n')
      : source.textContent.replace(/\s+/g, '')
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent
      // The word in the page's language: data-copied on the button or around it.
      var copied = button.closest('[data-copied]')
      button.textContent = (copied && copied.getAttribute('data-copied')) || 'Copied'
      setTimeout(function () { button.textContent = label }, 2000)
    })
  }

  function reveal (root) {
    var scope = root && root.querySelectorAll ? root : document
    scope.querySelectorAll('[data-copy][hidden], [data-print][hidden]').forEach(function (el) {
      if (el.hasAttribute('data-copy') && !navigator.clipboard) return
      el.hidden = false
    })
  }

  document.addEventListener('click', function (event) {
    var target = event.target
    if (!(target instanceof Element)) return
    var copy = target.closest('[data-copy]')
    if (copy) return copyText(copy)
    if (target.closest('[data-print]')) window.print()
  })

  document.addEventListener('htmx:after:swap', function (event) {
    var swapped = swappedIn(event)
    reveal(swapped || document)
    if (!swapped) return
    focusTarget(swapped.matches('[data-focus]') ? swapped : swapped.querySelector('[data-focus]'))
  })

  function ready () {
    reveal(document)
    // On a full page only errors take focus; inputs use autofocus.
    focusTarget(document.querySelector('[data-focus*="error"]'))
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready)
  else ready()
})()
